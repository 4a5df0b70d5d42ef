#!/usr/bin/env python3
"""A host signing in to a session URL with the official Python SDK client
(PyPI `mcp` 2.x) and its OAuth provider, OAuthClientProvider.

    host_signin_client.py URL --issuer ISS --login NAME --redirect-uri URI
                          [--client-name NAME] [--client-metadata-url URL]
                          [--token jwt|opaque] [--tool everything__echo]
                          [--mode auto|legacy] [--label NAME] [--token-out FILE]
                          [--refused]

The provider does the whole flow by itself: the 401 and its resource_metadata,
Protected Resource Metadata (RFC 9728), the authorization server's metadata,
dynamic client registration (RFC 7591), or with --client-metadata-url a
Client ID Metadata Document instead, PKCE, the authorization request with
`resource` (RFC 8707), and the token request. Its redirect handler is a
browser: it follows the authorization link with httpx2, signs in as NAME on
the login page and agrees on the consent page, and stops at the redirect to
--redirect-uri; its callback handler hands the code, state and iss back.

Then: tools/list has TOOL, and tools/call TOOL echoes. --token says what the
access token must be: a JWT whose iss, sub and aud are ISS, NAME and URL, or
an opaque one (not a JWT). A second client with the same token storage then
lists the tools again without signing in again. --token-out writes the
access token to FILE, for the caller's own checks. With --refused, NAME is
not the session's owner: the sign-in must still succeed, and then the
session URL must answer 404 to the token, as it does for an unknown session
(the caller compares the two answers). Prints `ok - ...` /
`not ok - ...` per check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

import tap
from tap import check

OVERALL_TIMEOUT_S = 120
CALL_TIMEOUT_S = 30
ECHO = "hello from a signed-in host"



def short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def flatten(exc: BaseException) -> str:
    """The innermost messages of an exception group, which anyio raises from task groups."""
    if hasattr(exc, "exceptions"):
        return "; ".join(flatten(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def result_text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified (the gateway verifies it); None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None


class MemoryStorage:
    """The SDK's TokenStorage, in memory: what a host keeps between connections."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Form(HTMLParser):
    """The first form of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag == "input" and self.action is not None and not self.done and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.done = True


class Browser:
    """The redirect and callback handlers: a person with a browser, who signs in and agrees."""

    def __init__(self, login: str, redirect_uri: str) -> None:
        self.login = login
        self.redirect_uri = redirect_uri
        self.links: list[str] = []
        self.pages: list[str] = []  # what was shown and done, in order
        self.callback: dict[str, str] | None = None

    async def open(self, link: str) -> None:
        self.links.append(link)
        self.callback = None
        url, method, data = link, "GET", None
        async with httpx2.AsyncClient(follow_redirects=False, timeout=httpx2.Timeout(CALL_TIMEOUT_S)) as http:
            for _ in range(20):
                response = await http.request(method, url, data=data)
                method, data = "GET", None
                if response.status_code in (301, 302, 303, 307, 308):
                    url = urljoin(str(response.url), response.headers["location"])
                    if url.startswith(self.redirect_uri):
                        # The host's own callback: the browser would deliver it there.
                        query = parse_qs(urlsplit(url).query)
                        self.callback = {k: v[0] for k, v in query.items()}
                        self.pages.append("callback")
                        return
                    continue
                if response.status_code != 200:
                    raise RuntimeError(f"the browser got {response.status_code} at {url}: {short(response.text)}")
                form = Form()
                form.feed(response.text)
                prompt = form.fields.get("prompt")
                if form.action is None or prompt not in ("login", "consent"):
                    raise RuntimeError(f"a page with no login or consent form at {url}: {short(response.text)}")
                data = dict(form.fields)
                if prompt == "login":
                    data.update(login=self.login, password="any")
                self.pages.append(prompt)
                url, method = urljoin(str(response.url), form.action), "POST"
        raise RuntimeError("no redirect to the callback after 20 steps")

    async def code(self) -> AuthorizationCodeResult:
        got = self.callback or {}
        if "code" not in got:
            raise RuntimeError(f"the authorization server answered {short(got)}")
        return AuthorizationCodeResult(code=got["code"], state=got.get("state"), iss=got.get("iss"))


async def run(args: argparse.Namespace) -> None:
    label = args.label
    browser = Browser(args.login, args.redirect_uri)
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name=args.client_name,
            redirect_uris=[args.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.code,
        client_metadata_url=args.client_metadata_url,
    )
    exchanges: list[tuple[str, str, int, str]] = []  # method, URL without query, status, WWW-Authenticate

    async def record(response: httpx2.Response) -> None:
        request = response.request
        url = str(request.url).split("?")[0]
        exchanges.append((request.method, url, response.status_code, response.headers.get("www-authenticate", "")))

    http = httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(CALL_TIMEOUT_S), event_hooks={"response": [record]})
    if args.refused:
        try:
            async with http, Client(streamable_http_client(args.url, http_client=http), mode=args.mode,
                                    read_timeout_seconds=CALL_TIMEOUT_S) as client:
                names = [t.name for t in (await client.list_tools()).tools]
            check(label, "the session refuses this user after the sign-in", False, f"it listed {short(sorted(names))}")
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the point; the statuses say which
            after = [e for e in exchanges if e[1] == args.url and e[2] not in (401,)]
            check(label, "signed in, the session URL answers 404 to this user's token",
                  bool(storage.tokens) and bool(after) and all(e[2] == 404 for e in after),
                  f"token {'obtained' if storage.tokens else 'not obtained'}, answers {short([e[:3] for e in after])}, "
                  f"error {short(flatten(exc))}")
    else:
        async with http, Client(streamable_http_client(args.url, http_client=http), mode=args.mode,
                                read_timeout_seconds=CALL_TIMEOUT_S) as client:
            check(label, f"connects and signs in (protocol {client.protocol_version})", True)
            names = [t.name for t in (await client.list_tools()).tools]
            if check(label, f"tools/list has {args.tool}", args.tool in names, f"got {short(sorted(names))}"):
                result = await client.call_tool(args.tool, {"message": ECHO})
                text = result_text(result)
                check(label, f"tools/call {args.tool} echoes", not result.is_error and ECHO in text,
                      f"is_error={result.is_error} text={short(text)}")

    # What the flow went through, in order.
    ctx = provider.context
    first = exchanges[0] if exchanges else ("", "", 0, "")
    path = urlsplit(args.url).path
    base = args.url[: -len(path)]
    prm_url = f"{base}/.well-known/oauth-protected-resource{path}"
    check(label, "the first request, without a token, got 401 with resource_metadata",
          first[1] == args.url and first[2] == 401 and f'resource_metadata="{prm_url}"' in first[3],
          f"got {short(first)}")
    prm = ctx.protected_resource_metadata
    check(label, "Protected Resource Metadata names the session URL and the issuer",
          prm is not None and str(prm.resource) == args.url
          and [str(s).rstrip("/") for s in prm.authorization_servers] == [args.issuer],
          f"got {short(prm.model_dump(mode='json') if prm else None)}")
    check(label, "the PRM was fetched from the session URL's well-known path",
          any(e[0] == "GET" and e[1] == prm_url and e[2] == 200 for e in exchanges),
          f"requests: {short([e[:3] for e in exchanges], 800)}")
    asm = ctx.oauth_metadata
    check(label, "the authorization server's metadata was discovered",
          asm is not None and str(asm.issuer).rstrip("/") == args.issuer, f"got {short(asm)}")
    info = ctx.client_info
    if args.client_metadata_url:
        check(label, "the client_id is its metadata document's URL, with no registration",
              info is not None and info.client_id == args.client_metadata_url
              and not any(e[0] == "POST" and e[1].endswith("/reg") for e in exchanges),
              f"client_id {info.client_id if info else None}")
    else:
        check(label, "the client registered dynamically",
              info is not None and bool(info.client_id)
              and any(e[0] == "POST" and asm is not None and e[1] == str(asm.registration_endpoint) and e[2] == 201
                      for e in exchanges),
              f"client_id {info.client_id if info else None}, requests: {short([e[:3] for e in exchanges], 800)}")
    link = browser.links[0] if browser.links else ""
    query = parse_qs(urlsplit(link).query)
    check(label, "the authorization request names the session URL as resource, with PKCE S256",
          query.get("resource") == [args.url] and query.get("code_challenge_method") == ["S256"]
          and bool(query.get("code_challenge")), f"got {short(link)}")
    check(label, f"the browser signed in as {args.login}, agreed, and came back with a code",
          browser.pages == ["login", "consent", "callback"] and "code" in (browser.callback or {}),
          f"pages {browser.pages}, callback keys {sorted(browser.callback or {})}")
    token = storage.tokens.access_token if storage.tokens else ""
    if args.token_out and token:
        with open(args.token_out, "w", encoding="utf-8") as out:
            out.write(token + "\n")
    claims = jwt_claims(token)
    if args.token == "jwt":
        want = {"iss": args.issuer, "sub": args.login, "aud": args.url}
        got = {k: (claims or {}).get(k) for k in want}
        check(label, "the access token is a JWT for the session URL, of this user", got == want, f"got {got}")
    elif args.token == "opaque":
        check(label, "the access token is opaque (the gateway has to introspect it)",
              bool(token) and claims is None, "it is a JWT" if claims else "no token")

    if args.refused:
        return
    # A host that connects again uses the token it has: no new sign-in.
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(CALL_TIMEOUT_S)) as again, Client(
        streamable_http_client(args.url, http_client=again), mode=args.mode, read_timeout_seconds=CALL_TIMEOUT_S
    ) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    check(label, "connecting again with the stored token lists the tools without a new sign-in",
          args.tool in names and len(browser.links) == 1, f"{len(browser.links)} sign-ins, tools {short(sorted(names))}")


def main() -> int:
    parser = argparse.ArgumentParser(description="A host signing in to a session URL with the Python SDK")
    parser.add_argument("url")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--login", required=True, help="the login name, which becomes the token's subject")
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--client-name", default="mcp-mux e2e python host")
    parser.add_argument("--client-metadata-url", default=None)
    parser.add_argument("--token", choices=["jwt", "opaque", "any"], default="any")
    parser.add_argument("--tool", default="everything__echo")
    parser.add_argument("--mode", default="auto")
    parser.add_argument("--label", default="python host sign-in")
    parser.add_argument("--token-out", default="", help="write the access token to this file")
    parser.add_argument("--refused", action="store_true", help="LOGIN does not own the session: expect 404 after signing in")
    args = parser.parse_args()

    async def bounded() -> None:
        with anyio.fail_after(OVERALL_TIMEOUT_S):
            await run(args)

    try:
        anyio.run(bounded)
    except Exception as exc:  # a crash is a failed check, with the reason on one line
        check(args.label, "session ran to the end", False, short(flatten(exc), 1000))
    return 1 if tap.failures else 0


if __name__ == "__main__":
    sys.exit(main())
