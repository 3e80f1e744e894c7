"""URL redaction: user-info, query values and fragments never survive into a message."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kernel import errors
from kernel.errors import ErrorType
from kernel.redact import redact_url, redact_urls
from workflows.shared.failures import StepFailed


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:pass@host/p?token=abc", "https://***@host/p?token=***"),
        ("https://api.example.com/v1/items", "https://api.example.com/v1/items"),
        ("https://h/p?a=1&b=&c", "https://h/p?a=***&b=***&***"),
        ("https://h/p?a=1#access_token=x", "https://h/p?a=***#***"),
        ("https://h:8443/p?", "https://h:8443/p?"),
        ("https://tok@h", "https://***@h"),
        ("https://a@b@h/p", "https://***@h/p"),
        ("http://[::1]:80/x?k=v", "http://[::1]:80/x?k=***"),
        ("not a url?secret=1", "not a url?secret=***"),
        ("https://h/{{secrets.TOKEN}}?q={{secrets.TOKEN}}", "https://h/{{secrets.TOKEN}}?q=***"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_a_url_that_is_a_secret_as_a_whole_keeps_its_origin_only() -> None:
    url = "https://u:p@hooks.example.com/services/T0/B0/xyz?x=1"
    assert redact_url(url, keep_path=False) == "https://***@hooks.example.com/***?x=***"
    assert redact_url("https://hooks.example.com/", keep_path=False) == "https://hooks.example.com/"


def test_urls_inside_messages() -> None:
    text = "step 'a': GET https://k:s@h/p?token=abc answered 401 (see 'http://x/?q=1')"
    assert redact_urls(text) == (
        "step 'a': GET https://***@h/p?token=*** answered 401 (see 'http://x/?q=***')"
    )
    assert redact_urls("no url here ?token=abc") == "no url here ?token=abc"


def test_every_application_error_and_step_failure_is_redacted() -> None:
    error = errors.non_retryable(ErrorType.INVALID_REQUEST, "bad https://u:p@h/?t=secret")
    assert error.message == "bad https://***@h/?t=***"
    failed = StepFailed.of(ErrorType.ENDPOINT_FAILED, "https://proxy/?key=secret said no")
    assert failed.failure.message == str(failed) == "https://proxy/?key=*** said no"


# -- properties -------------------------------------------------------------------------

# Secret parts are drawn from characters the rest of the URL never uses (upper case and
# punctuation), so finding any of their text in the output means it survived.
SECRET_TEXT = st.text(alphabet="XYZQWV+!$'(),;~%", min_size=1, max_size=12)
NAMES = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
HOSTS = st.sampled_from(["api.example.com", "h", "127.0.0.1", "[::1]", "example.com:8443"])
PATHS = st.lists(st.text(alphabet="abcdefgh-_", min_size=1, max_size=6), max_size=3).map(
    lambda parts: "".join(f"/{part}" for part in parts)
)


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A URL and the secret parts it holds (user-info, query values, fragment)."""
    secrets: list[str] = []
    userinfo = ""
    if draw(st.booleans()):
        user = draw(SECRET_TEXT)
        password = draw(st.none() | SECRET_TEXT)
        secrets += [user] if password is None else [user, password]
        userinfo = f"{user}@" if password is None else f"{user}:{password}@"
    pairs = draw(st.lists(st.tuples(NAMES, SECRET_TEXT), max_size=4))
    query = "?" + "&".join(f"{name}={value}" for name, value in pairs) if pairs else ""
    secrets += [value for _, value in pairs]
    fragment = ""
    if draw(st.booleans()):
        fragment_text = draw(SECRET_TEXT)
        secrets.append(fragment_text)
        fragment = f"#{fragment_text}"
    scheme = draw(st.sampled_from(["http", "https"]))
    return f"{scheme}://{userinfo}{draw(HOSTS)}{draw(PATHS)}{query}{fragment}", secrets


@given(urls())
def test_no_query_value_user_info_or_fragment_survives(case: tuple[str, list[str]]) -> None:
    url, secrets = case
    redacted = redact_url(url)
    for secret in secrets:
        assert secret not in redacted
    parts = urlsplit(redacted)
    assert parts.username in (None, "***") and parts.password is None
    assert all(value == "***" for _, value in parse_qsl(parts.query, keep_blank_values=True))
    # What is left to see is the address: scheme, host and path as they were.
    original = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == (
        original.scheme,
        original.hostname,
        original.port,
        original.path,
    )


@given(urls(), st.text(alphabet="abc :", max_size=10), st.sampled_from(["{}", "'{}'", '"{}"']))
def test_urls_quoted_in_text_are_redacted(case: tuple[str, list[str]], text: str, quoting: str):
    url, secrets = case
    # `repr` puts a URL holding a quote in double quotes.
    assume("'" not in url or quoting != "'{}'")
    message = redact_urls(f"{text} {quoting.format(url)}: {text}")
    for secret in secrets:
        assert secret not in message


@given(urls())
def test_redaction_is_idempotent(case: tuple[str, list[str]]) -> None:
    once = redact_url(case[0])
    assert redact_url(once) == once
