"""The shapes of credentials: one rule per provider format, plus assignments and connection strings. Pure.

Each rule is a provider's documented token shape (a prefix and a length or alphabet) anchored so it
does not match inside a longer word, or a context that names a secret (`DB_PASSWORD=…`,
`Authorization: Bearer …`, `postgres://user:pass@host`). Values that are placeholders
(`ghp_xxxx…`, `AKIAIOSFODNN7EXAMPLE`, `${DB_PASSWORD}`, `<your-key>`, `insert_key_here`) are not
secrets. detect-secrets' maintained pattern plugins run beside these (`app.policy.secrets`): a rule
here exists because no plugin covers that format, or covers it with a false positive we measured.

`Rule.group` names the regex group that holds the secret itself (the whole match when absent):
redaction removes exactly that span, multi-line private keys included.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

B = r"(?<![A-Za-z0-9_-])"  # not inside a longer token
E = r"(?![A-Za-z0-9_-])"


@dataclass(frozen=True)
class Rule:
    kind: str  # what it is, shown in findings ("GitLab personal access token")
    family: str  # for the benchmark's table ("gitlab")
    pattern: re.Pattern[str]
    group: str | None = None  # the named regex group holding the secret
    min_entropy: float = 0.0
    multiline: bool = False  # matched against the whole text, not line by line


def _r(kind: str, family: str, regex: str, **kw: object) -> Rule:
    flags = re.MULTILINE | (re.DOTALL if kw.get("multiline") else 0)
    return Rule(kind, family, re.compile(regex, flags), **kw)  # type: ignore[arg-type]


RULES: tuple[Rule, ...] = (
    # Version control and CI
    _r("GitHub token", "github", B + r"(?P<s>gh[pousr]_[A-Za-z0-9]{36,255})" + E, group="s"),
    _r("GitHub fine-grained token", "github", B + r"(?P<s>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})" + E, group="s"),
    _r("GitLab token", "gitlab", B + r"(?P<s>gl(?:pat|dt|ptt|rt|ft|soat|cbt|imt|agent)-[A-Za-z0-9_-]{20,64})" + E, group="s"),
    _r("GitLab runner registration token", "gitlab", B + r"(?P<s>GR1348941[A-Za-z0-9_-]{20,})" + E, group="s"),
    # Cloud providers
    _r("AWS access key id", "aws", B + r"(?P<s>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})" + E, group="s"),
    _r(
        "AWS secret access key",
        "aws",
        r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?(?P<s>[A-Za-z0-9/+=]{40})" + E,
        group="s",
        min_entropy=3.5,
    ),
    _r("Google API key", "google", B + r"(?P<s>AIza[0-9A-Za-z_-]{35})" + E, group="s"),
    _r("Google OAuth client secret", "google", B + r"(?P<s>GOCSPX-[A-Za-z0-9_-]{28})" + E, group="s"),
    _r("Google OAuth access token", "google", B + r"(?P<s>ya29\.[0-9A-Za-z_-]{30,})" + E, group="s"),
    _r(
        "Azure AD client secret",
        "azure",
        r"(?<![A-Za-z0-9_~.-])(?P<s>[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])",
        group="s",
    ),
    _r("Azure storage account key", "azure", r"(?i)AccountKey=(?P<s>[A-Za-z0-9+/]{86}==)", group="s"),
    _r("Azure shared access signature", "azure", r"(?i)[?&]sig=(?P<s>[A-Za-z0-9%+/]{43,}(?:%3D|=){0,2})", group="s"),
    _r("DigitalOcean token", "cloud", B + r"(?P<s>do[por]_v1_[a-f0-9]{64})" + E, group="s"),
    _r("Heroku API key", "cloud", B + r"(?P<s>HRKU-[A-Za-z0-9_-]{60})" + E, group="s"),
    _r("Fly.io token", "cloud", B + r"(?P<s>fo1_[A-Za-z0-9_-]{43})" + E, group="s"),
    _r("Databricks token", "cloud", B + r"(?P<s>dapi[a-f0-9]{32}(?:-\d)?)" + E, group="s"),
    _r("Vault token", "vault", B + r"(?P<s>hv[sb]\.[A-Za-z0-9_-]{24,})" + E, group="s"),
    _r("Doppler token", "vault", B + r"(?P<s>dp\.(?:pt|st|sa|ct|scim)\.[A-Za-z0-9]{40,44})" + E, group="s"),
    # Model providers
    _r("OpenAI API key", "openai", B + r"(?P<s>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,})" + E, group="s"),
    _r("OpenAI project key", "openai", B + r"(?P<s>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,})" + E, group="s"),
    _r("Anthropic API key", "anthropic", B + r"(?P<s>sk-ant-(?:api|admin|oat|ort)\d{2}-[A-Za-z0-9_-]{80,})" + E, group="s"),
    _r("Hugging Face token", "ai", B + r"(?P<s>hf_[A-Za-z]{34})" + E, group="s"),
    # Messaging and SaaS
    _r("Slack token", "slack", B + r"(?P<s>xox[baprse]-[0-9]{9,13}-[0-9A-Za-z-]{10,})" + E, group="s"),
    _r("Slack app token", "slack", B + r"(?P<s>xapp-\d-[A-Z0-9]{9,13}-\d{10,14}-[a-f0-9]{32,66})" + E, group="s"),
    _r("Slack webhook URL", "slack", r"(?P<s>https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{40,})", group="s"),
    _r("Stripe secret key", "stripe", B + r"(?P<s>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,247})" + E, group="s"),
    _r("Twilio API key", "twilio", B + r"(?P<s>SK[0-9a-f]{32})" + E, group="s"),
    _r("SendGrid API key", "sendgrid", B + r"(?P<s>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})" + E, group="s"),
    _r("Mailgun API key", "saas", B + r"(?P<s>key-[0-9a-z]{32})" + E, group="s", min_entropy=3.5),
    _r("Shopify token", "saas", B + r"(?P<s>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})" + E, group="s"),
    _r("Telegram bot token", "saas", r"(?<![0-9])(?P<s>[0-9]{8,10}:AA[A-Za-z0-9_-]{33})" + E, group="s"),
    _r("Linear API key", "saas", B + r"(?P<s>lin_api_[A-Za-z0-9]{40})" + E, group="s"),
    _r("Postman API key", "saas", B + r"(?P<s>PMAK-[a-f0-9]{24}-[a-f0-9]{34})" + E, group="s"),
    _r("Sentry token", "saas", B + r"(?P<s>sntr[ysu]_[A-Za-z0-9_=+/-]{40,})" + E, group="s"),
    _r("Grafana token", "saas", B + r"(?P<s>gl(?:c|sa)_[A-Za-z0-9_+/=-]{32,})" + E, group="s"),
    _r("New Relic key", "saas", B + r"(?P<s>NR(?:AK|JS|II)-[A-Z0-9]{27})" + E, group="s"),
    _r("PlanetScale token", "saas", B + r"(?P<s>pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.=-]{32,64})" + E, group="s"),
    _r("Pulumi token", "saas", B + r"(?P<s>pul-[a-f0-9]{40})" + E, group="s"),
    _r("Square token", "saas", B + r"(?P<s>(?:EAAA|sq0atp-|sq0csp-)[A-Za-z0-9_-]{22,60})" + E, group="s"),
    # Package registries
    _r("npm token", "registry", B + r"(?P<s>npm_[A-Za-z0-9]{36})" + E, group="s"),
    _r("PyPI token", "registry", B + r"(?P<s>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})" + E, group="s"),
    _r("npm registry auth", "registry", r"(?i)_auth(?:Token)?\s*=\s*(?P<s>[A-Za-z0-9+/=_-]{20,})", group="s", min_entropy=3.0),
    # Tokens by structure
    _r("JSON Web Token", "jwt", B + r"(?P<s>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})" + E, group="s"),
    # Private keys: the whole block, body included (also inside JSON strings with \n escapes)
    _r(
        "Private key",
        "private_key",
        r"(?P<s>-----BEGIN (?P<label>(?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
        r"(?:\\[rn]|[\r\n\tA-Za-z0-9+/=: ,.-])+?-----END (?P=label)-----)",
        group="s",
        multiline=True,
    ),
    _r(
        "PuTTY private key",
        "private_key",
        r"(?P<s>PuTTY-User-Key-File-\d: [\s\S]+?Private-MAC: [0-9a-f]+)",
        group="s",
        multiline=True,
    ),
    # Credentials in connection strings and commands
    _r(
        "Password in a connection string",
        "connection",
        r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@'\"`]{0,64}:(?P<s>[^\s@'\"`/]{3,128})@[A-Za-z0-9.-]",
        group="s",
    ),
    _r(
        "Password in a connection string",
        "connection",
        r"(?i)(?:^|[;\s\"'])(?:password|pwd)=(?P<s>[^;\s\"'(){}\[\],]{6,128})(?=[;\s\"']|$)",
        group="s",
        min_entropy=2.0,
    ),
    _r(
        "Credentials on a command line",
        "curl",
        r"(?:^|\s)(?:-u|--user)\s+['\"]?[^\s'\":]{1,64}:(?P<s>[^\s'\"]{4,128})",
        group="s",
    ),
    _r(
        "Authorization header",
        "curl",
        r"(?i)authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token|bot)\s+(?P<s>[A-Za-z0-9._~+/=-]{12,})",
        group="s",
        min_entropy=3.0,
    ),
)  # fmt: skip

# A value assigned to a name that says it is a secret. Quoted anywhere; unquoted only in files made
# of settings (.env, .ini, credentials, properties, YAML, TOML), where an unquoted word is a value.
CREDENTIAL_NAMES = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key|"
    r"private[_.-]?key|client[_.-]?secret|credentials?|auth[_.-]?key|session[_.-]?key|signing[_.-]?key|"
    r"encryption[_.-]?key|connection[_.-]?string|webhook[_.-]?secret)[A-Za-z0-9_.-]*"
)
# The same words alone: a cheap test for whether a line can hold an assignment worth parsing.
CREDENTIAL_WORDS = re.compile(
    r"(?i)password|passwd|passphrase|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key|"
    r"credential|auth[_.-]?key|session[_.-]?key|signing[_.-]?key|encryption[_.-]?key|connection[_.-]?string"
)
QUOTED_ASSIGNMENT = re.compile(
    rf"(?i)(?P<name>{CREDENTIAL_NAMES})[\"']?\s*(?::=|[:=]|=>|\+=)\s*(?:[rbuf]{{0,2}})(?P<q>[\"'`])(?P<s>[^\"'`\n]{{6,200}})(?P=q)"
)
PLAIN_ASSIGNMENT = re.compile(
    rf"(?i)^\s*(?:export\s+)?[\"']?(?P<name>{CREDENTIAL_NAMES})[\"']?\s*[:=]\s*(?P<s>[^\s\"'#;]{{6,200}})\s*(?:[#;].*)?$"
)
SETTINGS_FILES = re.compile(
    r"(?i)(?:^|/)(?:\.env(?:\.[\w.-]+)?|[\w.-]*\.(?:env|ini|cfg|conf|properties|toml|ya?ml)|credentials|"
    r"config|\.npmrc|\.pypirc|\.netrc|\.pgpass|[\w.-]*\.tfvars)$"
)
GENERIC_KIND = "Secret assigned to a secret-looking name"
GENERIC_MIN_ENTROPY = 2.6

_PLACEHOLDER_WORDS = re.compile(
    r"(?i)(example|sample|dummy|fake|placeholder|changeme|change[_-]?me|your[_-]|insert|replace|redacted|"
    r"todo|xxxx|\*\*\*|\.\.\.|…|lorem|<[^>]*>|\$\{|\{\{|%\(|\$\(|^\$[A-Za-z_]|^%[A-Za-z_]+%$|process\.env|"
    r"os\.environ|getenv|\benv\b|not[_-]?set|\{[A-Za-z_][\w.]*\}|"
    r"secret[_-]?here|key[_-]?here|token[_-]?here|password[_-]?here|my[_-]?(?:secret|password|token|key))"
)
_CODE_VALUE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\(\)?)?$|[()\[\]{}]|^\$|^@")


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values()) if value else 0.0


_STAND_INS = frozenset(
    {"password", "passwd", "pass", "pwd", "secret", "token", "apikey", "api_key", "key", "changeme", "admin"}
)


def placeholder(value: str) -> bool:
    """A value that stands for a secret rather than being one."""
    if value.lower().strip("'\"") in _STAND_INS or _PLACEHOLDER_WORDS.search(value):
        return True
    core = re.sub(r"^[A-Za-z0-9]{2,8}[_-]", "", value)  # the prefix of a token shape
    if len(set(core)) <= 3:  # ghp_xxxxxxxx…, 00000000, aaaaaaaa
        return True
    lowered = core.lower()
    return any(run in lowered for run in ("0123456789", "1234567890", "abcdefghij", "abcdef0123"))


def plausible(value: str, *, min_entropy: float) -> bool:
    return not placeholder(value) and entropy(value) >= min_entropy


def generic_value_ok(value: str, *, settings_file: bool, quoted: bool) -> bool:
    """Whether a value assigned to a secret-looking name is a literal secret and not code."""
    if len(value) < 8 or placeholder(value):
        return False
    if re.search(r"\s", value) or value.startswith("#") or value.endswith((".", "-", "_", "/", ":")):
        return False  # words, colours and prefixes of longer strings
    if not quoted and not settings_file:
        return False  # in source code an unquoted value is an expression
    # An unquoted word in a settings file can be a reference to another setting; a quoted one is a
    # string literal (an identifier-shaped literal is still a value).
    if not quoted and _CODE_VALUE.search(value) and not re.search(r"\d", value):
        return False
    if quoted and re.search(r"[()\[\]{}]|^\$|^@", value):
        return False
    if value.lower() in {"password", "secret", "token", "none", "null", "true", "false", "undefined"}:
        return False
    if re.fullmatch(r"[a-z]+(?:[_-][a-z]+)*", value):  # plain words: a setting's name, not a secret
        return False
    return entropy(value) >= GENERIC_MIN_ENTROPY
