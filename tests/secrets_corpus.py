"""A labelled corpus of secrets in context, one true and several false samples per format.

Built from the public facts of each format: the provider's documented token shape (prefix, length,
alphabet) and the kinds of test cases detector projects publish for their rules (a real-looking
value in an assignment, a `.env` line, a config file, a command; placeholders and lookalikes that
must not match). Values are generated from a fixed seed, so they look random but are stable and
none is live. Used by `tests/unit/test_secret_detection.py` and `bench/secrets_recall.py`.
"""

from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass

_RNG = random.Random(20261203)
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


def rand(alphabet: str, n: int) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


@dataclass(frozen=True)
class Sample:
    family: str
    name: str
    path: str
    text: str
    secret: str | None  # the exact secret the text holds; None for a negative sample


def _pem(label: str, lines: int = 12) -> str:
    body = "\n".join(rand(B64, 64) for _ in range(lines))
    return f"-----BEGIN {label}-----\n{body}\n{rand(B64, 20)}==\n-----END {label}-----"


def _jwt() -> str:
    def part(obj: str) -> str:
        return base64.urlsafe_b64encode(obj.encode()).decode().rstrip("=")

    header = part('{"alg":"HS256","typ":"JWT"}')
    claims = part('{"sub":"' + rand(HEX, 12) + '","iat":1700000000}')
    return f"{header}.{claims}.{rand(URLSAFE, 43)}"


def _true() -> list[Sample]:
    t: list[Sample] = []

    def add(family: str, name: str, secret: str, text: str, path: str = "app/settings.py") -> None:
        t.append(Sample(family, name, path, text.replace("{s}", secret), secret))

    add("github", "classic PAT", "ghp_" + rand(ALNUM, 36), 'GITHUB_TOKEN = "{s}"')
    add("github", "OAuth token", "gho_" + rand(ALNUM, 36), "token: {s}", "config/app.yml")
    add("github", "installation token", "ghs_" + rand(ALNUM, 36), "export GH_TOKEN={s}", "scripts/ci.sh")
    add(
        "github",
        "fine-grained PAT",
        "github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59),
        'headers = {"Authorization": "token {s}"}',
    )
    add("gitlab", "personal access token", "glpat-" + rand(URLSAFE, 20), 'GITLAB_TOKEN="{s}"', ".env")
    add("gitlab", "runner token", "glrt-" + rand(URLSAFE, 20), "runner_token = {s}", "config.toml")
    add("gitlab", "deploy token", "gldt-" + rand(URLSAFE, 20), "const t = '{s}';", "web/api.js")
    add(
        "gitlab",
        "pipeline trigger",
        "glptt-" + rand(HEX, 40),
        "curl -F token={s} https://gitlab.example.com/api/v4/projects/1/trigger/pipeline",
        "ci.sh",
    )
    add(
        "aws",
        "access key id",
        "AKIA" + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        "aws_access_key_id = {s}",
        ".aws/credentials",
    )
    add("aws", "secret access key", rand(B64, 40), "aws_secret_access_key = {s}", ".aws/credentials")
    add("aws", "secret key in code", rand(B64, 40), 'AWS_SECRET_ACCESS_KEY = "{s}"')
    add(
        "openai",
        "project key",
        "sk-proj-" + rand(URLSAFE, 74) + "T3BlbkFJ" + rand(URLSAFE, 74),
        'openai.api_key = "{s}"',
    )
    add(
        "openai",
        "legacy key",
        "sk-" + rand(ALNUM, 20) + "T3BlbkFJ" + rand(ALNUM, 20),
        "OPENAI_API_KEY={s}",
        ".env",
    )
    add(
        "anthropic",
        "API key",
        "sk-ant-api03-" + rand(URLSAFE, 93) + "AA",
        'client = Anthropic(api_key="{s}")',
    )
    add("anthropic", "OAuth token", "sk-ant-oat01-" + rand(URLSAFE, 93) + "AA", "ANTHROPIC_AUTH={s}", ".env")
    add(
        "slack",
        "bot token",
        "xoxb-" + rand(string.digits, 12) + "-" + rand(string.digits, 13) + "-" + rand(ALNUM, 24),
        'SLACK_BOT_TOKEN = "{s}"',
    )
    add(
        "slack",
        "app token",
        "xapp-1-A"
        + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10)
        + "-"
        + rand(string.digits, 13)
        + "-"
        + rand(HEX, 64),
        "slack_app_token: {s}",
        "deploy/values.yaml",
    )
    add(
        "slack",
        "webhook",
        "https://hooks.slack.com/services/T" + rand(ALNUM, 8) + "/B" + rand(ALNUM, 8) + "/" + rand(ALNUM, 24),
        'WEBHOOK = "{s}"',
    )
    add("stripe", "live secret key", "sk_live_51" + rand(ALNUM, 97), 'stripe.api_key = "{s}"')
    add("stripe", "restricted key", "rk_live_" + rand(ALNUM, 24), "STRIPE_KEY={s}", ".env.production")
    add("google", "API key", "AIza" + rand(URLSAFE, 35), 'const key = "{s}";', "web/maps.js")
    add(
        "google",
        "OAuth client secret",
        "GOCSPX-" + rand(URLSAFE, 28),
        '"client_secret": "{s}"',
        "client_secret.json",
    )
    add(
        "google",
        "OAuth access token",
        "ya29." + rand(URLSAFE, 60),
        "Authorization: Bearer {s}",
        "notes/http.txt",
    )
    add(
        "google",
        "service-account key",
        _pem("PRIVATE KEY").replace("\n", "\\n"),
        '{"type": "service_account", "private_key": "{s}\\n"}',
        "sa.json",
    )
    add(
        "azure",
        "AD client secret",
        rand(ALNUM, 3) + "8Q~" + rand(ALNUM + "_~.-", 34),
        'AZURE_CLIENT_SECRET = "{s}"',
    )
    add(
        "azure",
        "storage account key",
        rand(B64, 86) + "==",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};EndpointSuffix=core.windows.net",
        "appsettings.conf",
    )
    add("vault", "Vault token", "hvs." + rand(URLSAFE, 90), "VAULT_TOKEN={s}", ".env")
    add("twilio", "API key", "SK" + rand(HEX, 32), 'twilio_key = "{s}"')
    add(
        "sendgrid",
        "API key",
        "SG." + rand(URLSAFE, 22) + "." + rand(URLSAFE, 43),
        "SENDGRID_API_KEY: {s}",
        "docker-compose.yml",
    )
    add("registry", "npm token", "npm_" + rand(ALNUM, 36), "//registry.npmjs.org/:_authToken={s}", ".npmrc")
    add("registry", "PyPI token", "pypi-AgEIcHlwaS5vcmc" + rand(URLSAFE, 70), "password = {s}", ".pypirc")
    add("cloud", "Heroku API key", "HRKU-" + rand(URLSAFE, 60), "heroku_api_key: {s}", "config/deploy.yml")
    add("cloud", "DigitalOcean token", "dop_v1_" + rand(HEX, 64), 'DO_TOKEN = "{s}"')
    add("cloud", "Databricks token", "dapi" + rand(HEX, 32), "databricks_token = {s}", "profile.cfg")
    add("ai", "Hugging Face token", "hf_" + rand(string.ascii_letters, 34), 'HF_TOKEN = "{s}"')
    add("jwt", "JWT", _jwt(), 'auth = "Bearer {s}"')
    add("jwt", "JWT in a cookie", _jwt(), "Cookie: session={s}", "tests/http/req.txt")
    add("private_key", "RSA PEM", _pem("RSA PRIVATE KEY"), "{s}\n", "deploy/key.pem")
    add("private_key", "OpenSSH key", _pem("OPENSSH PRIVATE KEY"), 'KEY = """{s}"""')
    add("private_key", "PGP key", _pem("PGP PRIVATE KEY BLOCK"), "{s}\n", "keys/signing.asc")
    add("private_key", "EC key", _pem("EC PRIVATE KEY", 4), "{s}\n", "certs/ec.key")
    putty = (
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n"
        + rand(B64, 64)
        + "\n"
        + rand(B64, 20)
        + "\nPrivate-Lines: 1\n"
        + rand(B64, 44)
        + "\nPrivate-MAC: "
        + rand(HEX, 64)
    )
    add("private_key", "PuTTY key", putty, "{s}\n", "keys/deploy.ppk")
    add(
        "connection",
        "PostgreSQL URL",
        rand(ALNUM, 18),
        'DATABASE_URL = "postgresql://app:{s}@db.internal:5432/prod"',
    )
    add("connection", "MySQL URL", rand(ALNUM, 16), "MYSQL_URL=mysql://root:{s}@10.0.0.5/shop", ".env")
    add(
        "connection",
        "MongoDB URL",
        rand(ALNUM, 20),
        "mongo: mongodb+srv://admin:{s}@cluster0.mongodb.net/db",
        "config/db.yml",
    )
    add("connection", "AMQP URL", rand(ALNUM, 16), 'BROKER = "amqp://worker:{s}@rabbit:5672//"')
    add("connection", "Redis URL", rand(ALNUM, 24), "REDIS_URL=redis://:{s}@cache:6379/0", ".env")
    add(
        "connection",
        "ADO.NET string",
        rand(ALNUM + "!#", 16),
        "Server=db;Database=app;User Id=sa;Password={s};",
        "web.config.ini",
    )
    add(
        "curl",
        "basic auth",
        rand(ALNUM, 16),
        "curl -u deploy:{s} https://ci.example.com/api",
        "scripts/release.sh",
    )
    add(
        "curl",
        "bearer header",
        rand(URLSAFE, 40),
        'curl -H "Authorization: Bearer {s}" https://api.example.com',
        "docs/api.md",
    )
    add("generic", ".env password", rand(ALNUM, 14) + "9", "DB_PASSWORD={s}", ".env")
    add("generic", "ini secret", rand(ALNUM, 24), "client_secret = {s}", "settings.ini")
    add("generic", "YAML token", rand(ALNUM, 32), "  api_token: {s}", "config/prod.yaml")
    add("generic", "access_token in code", rand(ALNUM, 32), 'access_token = "{s}"')
    add("generic", "credentials in JSON", rand(ALNUM, 28), '{"credentials": "{s}"}', "config.json")
    add("generic", "secret in TOML", rand(ALNUM + "!@#", 20), 'webhook_secret = "{s}"', "pyproject.toml")
    return t


def _false() -> list[Sample]:
    f: list[Sample] = []

    def add(family: str, name: str, text: str, path: str = "app/settings.py") -> None:
        f.append(Sample(family, name, path, text, None))

    add("github", "placeholder", 'GITHUB_TOKEN = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"')
    add("github", "in a longer word", "see ghp_token_rotation_policy for details")
    add("github", "too short", 'label = "ghp_' + rand(ALNUM, 20) + '"')
    add("gitlab", "placeholder", "GITLAB_TOKEN=glpat-XXXXXXXXXXXXXXXXXXXX", ".env.example")
    add("aws", "documentation key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", ".aws/credentials")
    add(
        "aws",
        "documentation secret",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ".aws/credentials",
    )
    add("aws", "inside a word", 'arn = "xAKIA' + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16) + 'y"')
    add("openai", "placeholder", 'OPENAI_API_KEY = "sk-your-key-here"')
    add("anthropic", "placeholder", "ANTHROPIC_API_KEY=sk-ant-api03-...", ".env.example")
    add("slack", "placeholder", 'SLACK_TOKEN = "xoxb-your-token"')
    add("stripe", "placeholder", 'stripe.api_key = "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx"')
    add("google", "placeholder", 'key = "AIzaXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"')
    add(
        "private_key",
        "stub header",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "docs/keys.md",
    )
    add("private_key", "header in a parser", 'if line.startswith("-----BEGIN OPENSSH PRIVATE KEY-----"):')
    add(
        "private_key",
        "public key",
        "-----BEGIN PUBLIC KEY-----\n" + rand(B64, 64) + "\n-----END PUBLIC KEY-----",
        "keys/pub.pem",
    )
    add("connection", "URL without a password", 'DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"')
    add(
        "connection",
        "password from the environment",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db/app",
        ".env",
    )
    add("connection", "placeholder password", 'url = "mysql://user:password@localhost/db"')
    add("curl", "variable", 'curl -u "$USER:$TOKEN" https://api.example.com', "scripts/x.sh")
    add(
        "curl",
        "placeholder header",
        'curl -H "Authorization: Bearer <token>" https://api.example.com',
        "docs/api.md",
    )
    add("generic", "from the environment", 'password = os.environ["DB_PASSWORD"]')
    add("generic", "function call", "token = get_token(session)")
    add("generic", "changeme", 'password = "changeme"')
    add("generic", "insert here", "API_KEY=insert_key_here", ".env.example")
    add("generic", "template", 'secret: "{{ vault_secret }}"', "deploy/values.yaml")
    add("generic", "type hint", "def connect(password: str, token: Optional[str] = None) -> None:")
    add("generic", "a setting name", 'SECRET_KEY_NAME = "django_secret_key"')
    add("generic", "empty", 'password = ""')
    add("generic", "masked", 'api_key = "************"')
    add("jwt", "truncated", 'token = "eyJhbGciOi..."')
    add("hash", "commit sha", "sha = 6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    add("hash", "uuid", 'request_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"')
    add("hash", "lock file hash", '"integrity": "sha512-' + rand(B64, 86) + '=="', "package-lock.json")
    return f


TRUE = _true()
FALSE = _false()
