"""The worker's secrets: where they come from, which placeholders they fill, and redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.http.models import HttpCall
from activities.http.secrets import Secrets, SecretSets, UnknownSecret, parse_secrets_file
from workflows.dag.graph import step_secrets
from workflows.dag.models import StepConfig
from workflows.shared.templating import Renderer, TemplateError, secret_names

TOKEN = "tok-3f9a/+b=c"


def test_secrets_file_as_json_or_lines() -> None:
    assert parse_secrets_file('{"API_TOKEN": "a", "_x1": "b=c"}') == SecretSets(
        {"API_TOKEN": "a", "_x1": "b=c"}
    )
    text = "# comment\n\nAPI_TOKEN=a=b \n OTHER = two words\n"
    assert parse_secrets_file(text) == SecretSets({"API_TOKEN": "a=b ", "OTHER": " two words"})


def test_secrets_file_sections_give_each_tenant_its_own() -> None:
    expected = SecretSets(
        default={"A": "default-a"},
        shared={"MAPS": "shared-maps"},
        tenants={"acme": {"STRIPE": "acme-stripe"}, "beta": {"STRIPE": "beta-stripe"}},
    )
    lines = (
        "A=default-a\n[shared]\nMAPS=shared-maps\n[tenant acme]\nSTRIPE=acme-stripe\n"
        "[ tenant beta ]\n# beta's\nSTRIPE=beta-stripe\n"
    )
    assert parse_secrets_file(lines) == expected
    as_json = (
        '{"A": "default-a", "shared": {"MAPS": "shared-maps"}, "tenants":'
        ' {"acme": {"STRIPE": "acme-stripe"}, "beta": {"STRIPE": "beta-stripe"}}}'
    )
    assert parse_secrets_file(as_json) == expected


def test_a_tenant_sees_its_own_and_shared_secrets_only() -> None:
    secrets = Secrets(
        {"LEGACY": "default-only"},
        shared={"MAPS": "shared-maps", "STRIPE": "shared-stripe"},
        tenants={"acme": {"STRIPE": "acme-stripe"}, "beta": {"BETA_KEY": "beta-key"}},
    )
    acme = secrets.for_tenant("acme")
    assert acme.names == ["MAPS", "STRIPE"]  # its own STRIPE over the shared one
    url = "https://h/{{secrets.STRIPE}}/{{secrets.MAPS}}"
    resolved = acme.resolve(HttpCall(url=url, secret_names=["STRIPE", "MAPS"]))
    assert resolved.url == "https://h/acme-stripe/shared-maps"
    # The default tenant's unprefixed secrets are the open gateway's (no tenant) only.
    assert secrets.for_tenant(None).names == ["LEGACY", "MAPS", "STRIPE"]
    assert secrets.for_tenant("newcomer").names == ["MAPS", "STRIPE"]
    # Another tenant's secret and one that exists nowhere fail alike.
    failures = []
    for name in ("BETA_KEY", "NOWHERE"):
        call = HttpCall(url=f"https://h/{{{{secrets.{name}}}}}", secret_names=[name], tenant="acme")
        with pytest.raises(UnknownSecret) as info:
            secrets.resolve(call)
        failures.append(str(info.value).replace(name, "NAME"))
    assert failures[0] == failures[1]
    assert "beta" not in failures[0] and "beta-key" not in failures[0]


def test_the_response_loses_the_values_the_request_sent() -> None:
    secrets = Secrets({"A": "alpha-value", "B": "beta-value"})
    resolved = secrets.resolve(HttpCall(url="https://h/{{secrets.A}}", secret_names=["A"]))
    echoed = {"url": "https://h/alpha-value", "alpha-value": ["x alpha-value", 3, None]}
    assert resolved.redact(echoed) == {"url": "https://h/***", "***": ["x ***", 3, None]}
    assert resolved.redact("beta-value") == "beta-value"  # not sent: nothing to hide


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("API_TOKEN hunter2\n", "SECRETS_FILE line 1: expected NAME=value"),
        ("ok=1\nbad-name=hunter2\n", "SECRETS_FILE line 2: 'bad-name' is not a secret name"),
        ('{"A": 1}', "the value of 'A' is not a string"),
        ('{"A": "hunter2",}', "SECRETS_FILE is not valid JSON (line 1)"),
        ("[1]", "SECRETS_FILE line 1: expected [shared] or [tenant <name>]"),
        ('{"tenants": {"acme": "hunter2"}}', "tenant 'acme' holds no object of secrets"),
    ],
)
def test_a_bad_secrets_file_is_refused_without_quoting_a_value(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_secrets_file(text)
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_variables_win_over_the_file(tmp_path: Path) -> None:
    file = tmp_path / "secrets.json"
    file.write_text('{"A": "from-file", "B": "file-only"}')
    environ = {
        "SECRET_A": "from-env",
        "SECRET_": "x",
        "SECRET_C-D": "y",
        "SECRET_E": "",
        "HOME": "/",
    }
    environ["SECRET_SHARED_S"] = "shared-value"
    secrets = Secrets.load(environ, file)
    assert secrets.names == ["A", "B", "S"]
    assert secrets.for_tenant("acme").names == ["S"]
    assert "from-env" not in repr(secrets) and "file-only" not in repr(secrets)
    resolved = secrets.resolve(HttpCall(url="https://h/{{secrets.A}}", secret_names=["A"]))
    assert resolved.url == "https://h/from-env"


def test_only_the_secrets_the_call_names_are_filled_in() -> None:
    secrets = Secrets({"API_TOKEN": TOKEN, "OTHER": "other-value"})
    call = HttpCall(
        url="https://h/p?sig={{ secrets.API_TOKEN }}",
        headers={"Authorization": "Bearer {{secrets.API_TOKEN}}", "X-Plain": "1"},
        query={"token": "{{secrets.API_TOKEN}}", "n": 2},
        # A placeholder that arrived inside data (a response) names OTHER: it is data.
        body={"text": "{{secrets.API_TOKEN}} and {{secrets.OTHER}}", "list": ["{{secrets.X}}"]},
        secret_names=["API_TOKEN"],
    )
    resolved = secrets.resolve(call)
    assert resolved.url == f"https://h/p?sig={TOKEN}"
    assert resolved.headers == {"Authorization": f"Bearer {TOKEN}", "X-Plain": "1"}
    assert resolved.query == {"token": TOKEN, "n": 2}
    assert resolved.body == {
        "text": f"{TOKEN} and {{{{secrets.OTHER}}}}",
        "list": ["{{secrets.X}}"],
    }
    assert resolved.secret_headers == {"authorization"}
    # The call itself, which is what history holds, is untouched.
    assert call.headers["Authorization"] == "Bearer {{secrets.API_TOKEN}}"


def test_a_call_naming_no_secret_sends_placeholders_as_they_are() -> None:
    call = HttpCall(url="https://h/", body="{{secrets.API_TOKEN}}")
    assert Secrets({"API_TOKEN": TOKEN}).resolve(call).body == "{{secrets.API_TOKEN}}"


def test_an_unknown_secret_is_named_and_nothing_is_filled_in() -> None:
    secrets = Secrets({"API_TOKEN": TOKEN})
    with pytest.raises(UnknownSecret) as info:
        secrets.resolve(HttpCall(url="https://h/", secret_names=["API_TOKEN", "MISSING"]))
    assert str(info.value) == (
        "no value for {{secrets.MISSING}} for tenant 'default' on this worker (add it to the"
        " tenant's section of SECRETS_FILE, or share it as SECRET_SHARED_<NAME>)"
    )


def test_redact_replaces_every_spelling_of_a_value() -> None:
    secrets = Secrets({"API_TOKEN": TOKEN, "PW": 'p"é'})
    text = f'{TOKEN} tok-3f9a%2F%2Bb%3Dc tok-3f9a%2F%2Bb%3Dc p\\"\\u00e9 p\\"é'
    assert secrets.for_tenant(None).redact(text) == "*** *** *** *** ***"
    assert Secrets().for_tenant(None).redact("nothing to do") == "nothing to do"


def test_workflow_code_leaves_secret_placeholders_as_written() -> None:
    renderer = Renderer({"token": "t", "secrets": {"API_TOKEN": "from input"}}, max_chars=100)
    assert renderer.render("{{secrets.API_TOKEN}}") == "{{secrets.API_TOKEN}}"
    assert renderer.render({"h": "Bearer {{ secrets.API_TOKEN }} {{token}}"}) == {
        "h": "Bearer {{ secrets.API_TOKEN }} t"
    }


@pytest.mark.parametrize(
    ("template", "variables"),
    [
        ("{{doc}}", {"doc": "post {{secrets.API_TOKEN}} here"}),
        ("{{doc}}", {"doc": {"nested": ["{{ secrets.API_TOKEN }}"]}}),
        ("text: {{doc}}", {"doc": {"k": "{{secrets.API_TOKEN}}"}}),
        ("Bearer {{secrets.API_TOKEN}} {{doc}}", {"doc": "{{secrets.API_TOKEN}}"}),
        # Two values side by side can form one placeholder.
        ("{{a}}{{b}}", {"a": "{{secrets.", "b": "API_TOKEN}}"}),
    ],
)
def test_a_value_holding_a_secret_the_request_uses_is_refused(
    template: str, variables: dict[str, object]
) -> None:
    renderer = Renderer(variables, secret_names=["API_TOKEN"])
    with pytest.raises(TemplateError, match=r"\{\{secrets.API_TOKEN\}\}, which the request uses"):
        renderer.render({"h": template})


def test_placeholders_of_secrets_the_request_does_not_use_are_data() -> None:
    variables = {"doc": "mentions {{secrets.OTHER}}"}
    renderer = Renderer(variables, secret_names=["API_TOKEN"])
    assert renderer.render("{{secrets.API_TOKEN}}: {{doc}}") == (
        "{{secrets.API_TOKEN}}: mentions {{secrets.OTHER}}"
    )
    renderer.charge({"dependencies": {"a": "{{secrets.OTHER}}"}})
    with pytest.raises(TemplateError):
        renderer.charge({"dependencies": {"a": "{{secrets.API_TOKEN}}"}})
    # Without secrets in the request, nothing is refused.
    assert Renderer(variables).render("{{doc}}") == "mentions {{secrets.OTHER}}"


def test_secret_names_come_from_templates_only() -> None:
    assert secret_names(
        "https://h/?k={{secrets.B}}",
        {"Authorization": "Bearer {{ secrets.A }}", "X": "{{secrets.bad-name}} {{secrets}}"},
        {"nested": ["{{secrets.B}}", "{{input_data.secrets.C}}", "{{secrets.D.e}}"]},
    ) == ["A", "B"]
    step = StepConfig.model_validate(
        {
            "step_name": "s",
            "usid": "u",
            "service_url": "https://h/{{secrets.URL_KEY}}",
            "headers": {"X-Key": "{{secrets.HEADER_KEY}}"},
            "input_prep_config": {"query": {"k": "{{secrets.QUERY_KEY}}"}, "body": {}},
        }
    )
    assert step_secrets(step) == ["HEADER_KEY", "QUERY_KEY", "URL_KEY"]
