"""Generate a Python client from Rampart's OpenAPI document and use it: log in, read /me,
search the products (scripts/openapi/run.sh).

A document the generator refuses, or a client that cannot do these three calls, fails."""

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--document", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--generator", required=True)
    args = parser.parse_args()
    password = os.environ["OPENAPI_ADMIN_PASSWORD"]

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    generated = subprocess.run(
        [args.generator, "generate", "--path", args.document, "--meta", "none",
         "--output-path", str(work / "rampart_client"), "--overwrite", "--fail-on-warning",
         "--config", str(Path(__file__).with_name("client-config.yaml"))],
        cwd=work, capture_output=True, text=True,
    )
    if generated.returncode != 0:
        print(generated.stdout, generated.stderr, sep="\n", file=sys.stderr)
        print("error: openapi-python-client refused the document", file=sys.stderr)
        return 1
    sys.path.insert(0, str(work))

    client_mod = importlib.import_module("rampart_client")
    models = importlib.import_module("rampart_client.models")
    login_api = importlib.import_module("rampart_client.api.auth.login")
    me_api = importlib.import_module("rampart_client.api.account.get_me")
    products_api = importlib.import_module("rampart_client.api.catalog.list_products")
    create_api = importlib.import_module("rampart_client.api.admin.create_product")

    anonymous = client_mod.Client(base_url=args.base_url, raise_on_unexpected_status=True)
    signed_in = login_api.sync(client=anonymous, body=models.LoginBody(email=args.email, password=password))
    assert isinstance(signed_in, models.TokenResponse), f"login answered {signed_in!r}"
    assert signed_in.token_type == "Bearer" and signed_in.user.email == args.email

    wrong = login_api.sync_detailed(client=anonymous, body=models.LoginBody(email=args.email, password="not the password"))
    assert wrong.status_code == 401 and isinstance(wrong.parsed, models.Problem), wrong
    assert wrong.parsed.code == "invalid_credentials", wrong.parsed

    admin = client_mod.AuthenticatedClient(
        base_url=args.base_url, token=signed_in.access_token, raise_on_unexpected_status=True
    )
    me = me_api.sync(client=admin)
    assert isinstance(me, models.UserBody) and me.email == args.email and me.role == "admin", me
    unauthenticated = me_api.sync_detailed(client=anonymous)
    assert unauthenticated.status_code == 401 and unauthenticated.parsed.code == "unauthenticated"

    created = create_api.sync(client=admin, body=models.NewProductInput(
        name="Smoke-test teapot", price_cents=1999, currency=models.NewProductInputCurrency.EUR, stock=3,
        description="<p>A teapot <script>x</script></p>"))
    assert isinstance(created, models.ProductBody), created
    assert "<script>" not in created.description

    found = products_api.sync(client=anonymous, q="Smoke-test", limit=10)
    assert found.total == 1 and found.items[0].id == created.id, found
    bad = products_api.sync_detailed(client=anonymous, q="Smoke-test", limit=101)
    assert bad.status_code == 400 and bad.parsed.code == "validation_failed", bad
    print(f"client: logged in as {me.email}, read /me, created and found product {created.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
