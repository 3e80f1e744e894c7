"""Where and how every process connects to Temporal (`settings.temporal_connect_config`):
environment > profile file > defaults, as Temporal's own tools have it."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from settings import (
    Settings,
    temporal_connect_config,
    temporal_environment,
    uses_embedded_temporal,
)

CLOUD_PROFILE = """
[profile.default]
address = "127.0.0.1:1"

[profile.cloud]
address = "acme.a1b2c.tmprl.cloud:7233"
namespace = "acme.a1b2c"
api_key = "key-from-the-profile"

[profile.selfhosted]
address = "temporal.internal:7233"
namespace = "pipelines"

[profile.selfhosted.tls]
server_name = "temporal.internal"
server_ca_cert_path = "{ca}"
client_cert_path = "{cert}"
client_key_path = "{key}"
"""


def defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text(f"{name} PEM")
    path = tmp_path / "temporal.toml"
    path.write_text(
        CLOUD_PROFILE.format(
            ca=tmp_path / "ca.pem", cert=tmp_path / "cert.pem", key=tmp_path / "key.pem"
        )
    )
    return path


def test_an_api_key_profile_connects_over_tls(config_file: Path) -> None:
    environ = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "cloud"}
    config = temporal_connect_config(defaults(), environ)
    assert config == {
        "target_host": "acme.a1b2c.tmprl.cloud:7233",
        "namespace": "acme.a1b2c",
        "api_key": "key-from-the-profile",
        "tls": True,
    }


def test_an_mtls_profile_reads_its_certificates(config_file: Path) -> None:
    environ = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "selfhosted"}
    config = temporal_connect_config(defaults(), environ)
    assert config["target_host"] == "temporal.internal:7233"
    assert config["namespace"] == "pipelines"
    assert config["tls"] == TLSConfig(
        domain="temporal.internal",
        server_root_ca_cert=b"ca PEM",
        client_cert=b"cert PEM",
        client_private_key=b"key PEM",
    )
    assert "api_key" not in config


def test_environment_variables_override_the_profile(config_file: Path) -> None:
    environ = {
        "TEMPORAL_CONFIG_FILE": str(config_file),
        "TEMPORAL_PROFILE": "cloud",
        "TEMPORAL_ADDRESS": "eu-west-1.aws.api.temporal.io:7233",
        "TEMPORAL_NAMESPACE": "acme-prod.a1b2c",
        "TEMPORAL_API_KEY": "key-from-the-environment",
    }
    config = temporal_connect_config(defaults(), environ)
    assert config == {
        "target_host": "eu-west-1.aws.api.temporal.io:7233",
        "namespace": "acme-prod.a1b2c",
        "api_key": "key-from-the-environment",
        "tls": True,
    }
    # TLS is on with a key unless turned off outright (say, a local proxy adds it).
    environ["TEMPORAL_TLS"] = "false"
    assert temporal_connect_config(defaults(), environ)["tls"] is False


def test_settings_given_in_code_count_as_the_environment(config_file: Path) -> None:
    environ = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "cloud"}
    given = Settings(_env_file=None, temporal_address="127.0.0.1:7999", temporal_namespace="t")  # type: ignore[call-arg]
    config = temporal_connect_config(given, environ)
    assert (config["target_host"], config["namespace"]) == ("127.0.0.1:7999", "t")
    assert config["api_key"] == "key-from-the-profile"  # the rest of the profile still applies


def test_nothing_configured_means_the_embedded_dev_server(tmp_path: Path) -> None:
    environ = {"TEMPORAL_CONFIG_FILE": str(tmp_path / "absent.toml")}
    settings = Settings(_env_file=None, temporal_port=7300)  # type: ignore[call-arg]
    assert temporal_connect_config(settings, environ) == {
        "target_host": "127.0.0.1:7300",
        "namespace": "default",
    }
    assert uses_embedded_temporal(settings, environ)


def test_a_profile_address_means_no_embedded_server(config_file: Path) -> None:
    assert not uses_embedded_temporal(defaults(), {"TEMPORAL_CONFIG_FILE": str(config_file)})


def test_a_misspelt_profile_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "temporal.toml"
    path.write_text('[profile.default.tls]\nserver_ca_cert = "ca.pem"\n')
    with pytest.raises(RuntimeError, match="server_ca_cert"):
        temporal_connect_config(defaults(), {"TEMPORAL_CONFIG_FILE": str(path)})


def test_a_missing_profile_is_refused(config_file: Path) -> None:
    environ = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "staging"}
    with pytest.raises(RuntimeError, match="staging"):
        temporal_connect_config(defaults(), environ)


def test_turning_host_verification_off_is_refused_not_ignored(tmp_path: Path) -> None:
    environ = {
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "true",
    }
    with pytest.raises(ValueError, match="TEMPORAL_TLS_SERVER_NAME"):
        temporal_connect_config(defaults(), environ)


def test_dotenv_holds_temporal_variables_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "TEMPORAL_API_KEY=from-dotenv\nTEMPORAL_NAMESPACE=from-dotenv\nREDIS_PORT=1\n"
    )
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "from-environment")
    environ = temporal_environment(env_file)
    assert environ["TEMPORAL_API_KEY"] == "from-dotenv"
    assert environ["TEMPORAL_NAMESPACE"] == "from-environment"
    assert "REDIS_PORT" not in environ or environ["REDIS_PORT"] != "1"  # only TEMPORAL_*
