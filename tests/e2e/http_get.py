"""http_get.py URL [ACCEPT_ENCODING]: prints the status, headers and the body's length and BLAKE2
digest as JSON, without decoding any Content-Encoding (so a test can compare raw bytes)."""

import hashlib
import json
import sys
import urllib.error
import urllib.request

request = urllib.request.Request(
    sys.argv[1],
    headers={"Accept-Encoding": sys.argv[2] if len(sys.argv) > 2 else "identity"},
)
try:
    response = urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as e:
    response = e
body = response.read()
print(
    json.dumps(
        {
            "status": response.status,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "length": len(body),
            "blake2b": hashlib.blake2b(body).hexdigest(),
        }
    )
)
