"""Redaction of what URLs carry besides their address: user-info, query values, fragments.

Pure and dependency-free, so every layer that writes a message uses it: the errors module
(every `ApplicationError` message), the HTTP activity, step failures in workflow code,
activity summaries, the gateway's `last_failure`, and webhook `last_error`.

    https://user:pass@api.example.com/v1/items?token=abc&page=2#frag
    -> https://***@api.example.com/v1/items?token=***&page=***#***

Query *names* stay (they say what was sent, `token=`), values go, whatever they hold: telling
a page number from an API key is guesswork, and a wrong guess leaks. `redact_url(url,
keep_path=False)` hides the path too, for URLs that are secrets as a whole, such as webhook
receivers (`https://hooks.example.com/***`).
"""

from __future__ import annotations

import re

MASK = "***"

#: A URL inside free text: a scheme, `://`, then everything up to whitespace or a character
#: URLs never hold as is (`"`, `<`, `>`, backtick). A URL right after a `'` (as `repr` quotes
#: it) ends at the next `'`; anywhere else a `'` is part of the URL, as it may be.
_URL_IN_TEXT = re.compile(
    r"(?<=')[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]*|[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"<>`]*"
)


def redact_url(url: str, *, keep_path: bool = True) -> str:
    """`url` with its user-info, every query value and its fragment replaced by `***`.

    Never raises: a string that is not a well-formed URL is redacted as far as it can be read
    (text after a `?` is taken as a query, after a `#` as a fragment).

    Args:
        url: Any string, usually an absolute http(s) URL.
        keep_path: False to replace the path as well (`https://host/***`), for URLs whose
            path is itself a secret.
    """
    rest, hash_sign, fragment = url.partition("#")
    rest, question_mark, query = rest.partition("?")
    scheme_end = rest.find("://")
    if scheme_end >= 0:
        prefix = rest[: scheme_end + 3]
        authority, slash, path = rest[scheme_end + 3 :].partition("/")
        if "@" in authority:
            authority = f"{MASK}@{authority.rpartition('@')[2]}"
        prefix += authority
        path = slash + path
    else:
        prefix, path = "", rest
        if "@" in path.partition("/")[0]:
            path = f"{MASK}@{path.partition('@')[2]}"
    if not keep_path and path.strip("/"):
        path = f"/{MASK}"
    redacted = prefix + path
    if question_mark:
        redacted += "?" + _redact_query(query)
    if hash_sign:
        redacted += "#" + (MASK if fragment else "")
    return redacted


def _redact_query(query: str) -> str:
    fields = []
    for field in query.split("&"):
        name, equals, _ = field.partition("=")
        if equals:
            fields.append(f"{name}={MASK}")
        else:
            fields.append(MASK if field else field)
    return "&".join(fields)


def redact_urls(text: str) -> str:
    """`text` with every URL in it passed through `redact_url` (for messages that quote URLs)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
