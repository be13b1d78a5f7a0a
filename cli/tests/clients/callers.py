"""What the client scripts share: the callers the test server knows (keys, and HS256 tokens
signed with its --jwt-secret), an HTTP call as one of them, the examples, and the output."""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.request

JWT_SECRET = "jwt-test-secret"


def token(subject):
    """An HS256 token for `subject`, signed with the server's --jwt-secret."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": subject, "exp": int(time.time()) + 3600}).encode())
    signature = hmac.new(JWT_SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256)
    return f"{header}.{claims}.{b64(signature.digest())}"


# Two keys, an admin key (`--admin key:admin`), and two token subjects.
KEYS = {"alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret",
        "carol": token("carol"), "dave": token("dave")}


def http(base, method, path, who, body=None):
    """`method path` on the server at `base` as `who`: the JSON answer, or the text."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("authorization", f"Bearer {KEYS[who]}")
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request) as response:
        text = response.read().decode()
        return json.loads(text) if response.headers.get_content_type() == "application/json" else text


def example(examples, name):
    with open(os.path.join(examples, name)) as f:
        return json.load(f)


def ok(name):
    print(f"ok: {name}", flush=True)
