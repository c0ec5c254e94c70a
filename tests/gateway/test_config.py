"""Config errors name the file, the key and the problem; secrets never print."""

from pathlib import Path

import pytest
from mailwarden.gateway.config import ConfigError, Secret, load_config, parse_duration

UPSTREAM = """
[upstream]
imap = "imap.example.com:993"
smtp = "smtp.example.com:465"
username = "sales@company.com"
password_env = "MW_TEST_UPSTREAM_PW"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mailwarden.toml"
    p.write_text(text)
    return p


def test_only_requested_sections_are_validated(tmp_path):
    p = write(tmp_path, '[company]\nname = "Bright"\ndomains = ["company.com"]\n[upstream]\nimap = "nonsense"\n')
    cfg = load_config(p, {"company"})
    assert cfg.company is not None and cfg.company.domains == ("company.com",)
    with pytest.raises(ConfigError, match=r"\[upstream\] imap: must look like host:port"):
        load_config(p, {"upstream"})


def test_error_names_file_section_and_key(tmp_path):
    p = write(tmp_path, '[company]\nname = "Bright"\ndomains = "company.com"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p, {"company"})
    assert str(p) in str(exc.value) and "[company] domains" in str(exc.value) and "list" in str(exc.value)


def test_unknown_key_and_section_are_refused(tmp_path):
    p = write(tmp_path, '[company]\nname = "B"\ndomains = ["c.com"]\ndomain = "typo"\n')
    with pytest.raises(ConfigError, match=r"\[company\] domain: unknown key"):
        load_config(p, {"company"})
    p = write(tmp_path, '[compnay]\nname = "B"\n')
    with pytest.raises(ConfigError, match=r"\[compnay\] is not a known section"):
        load_config(p, set())


def test_invalid_toml_names_the_line(tmp_path):
    p = write(tmp_path, '[company]\nname = "unterminated\n')
    with pytest.raises(ConfigError, match=r"invalid TOML.*line 2"):
        load_config(p, set())


def test_missing_file_and_no_config(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", set())
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="MAILWARDEN_CONFIG"):
        load_config(None, set())


def test_password_from_env_never_prints(tmp_path, monkeypatch):
    monkeypatch.setenv("MW_TEST_UPSTREAM_PW", "hunter2-very-secret")
    cfg = load_config(write(tmp_path, UPSTREAM), {"upstream"})
    assert cfg.upstream is not None
    assert cfg.upstream.password.reveal() == "hunter2-very-secret"
    assert "hunter2" not in repr(cfg.upstream) and "hunter2" not in str(cfg.upstream.password)
    assert cfg.upstream.imap.port == 993 and cfg.upstream.imap_tls == "implicit"


def test_password_env_missing_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("MW_TEST_UPSTREAM_PW", raising=False)
    with pytest.raises(ConfigError, match=r"password_env: the environment variable MW_TEST_UPSTREAM_PW is not set"):
        load_config(write(tmp_path, UPSTREAM), {"upstream"})


def test_password_file_relative_to_config(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    text = UPSTREAM.replace('password_env = "MW_TEST_UPSTREAM_PW"', 'password_file = "pw"')
    cfg = load_config(write(tmp_path, text), {"upstream"})
    assert cfg.upstream is not None and cfg.upstream.password.reveal() == "from-file"


def test_store_password_from_a_secret_file(tmp_path, monkeypatch):
    """compose.yaml's PostgreSQL password comes from a secret file, never the config itself."""
    (tmp_path / "db_password").write_text("p@ss/word\n")
    text = '[store]\nurl = "postgresql+psycopg://mailwarden@db:5432/mailwarden"\npassword_file = "db_password"\n'
    cfg = load_config(write(tmp_path, text), {"store"})
    assert cfg.store is not None
    from sqlalchemy.engine import make_url

    assert make_url(cfg.store.url).password == "p@ss/word" and cfg.store.url.split("@")[-1] == "db:5432/mailwarden"
    monkeypatch.setenv("MW_TEST_DB_PW", "from-env")
    cfg = load_config(write(tmp_path, text.replace('password_file = "db_password"', 'password_env = "MW_TEST_DB_PW"')),
                      {"store"})
    assert make_url(cfg.store.url).password == "from-env"
    with pytest.raises(ConfigError, match=r"\[store\] password_file: is for a postgresql:// url"):
        load_config(write(tmp_path, '[store]\npassword_file = "db_password"\n'), {"store"})
    with pytest.raises(ConfigError, match=r"\[store\] password_file: cannot read"):
        load_config(write(tmp_path, text.replace("db_password", "missing")), {"store"})


def test_store_defaults_to_sqlite_in_data_dir(tmp_path):
    cfg = load_config(write(tmp_path, ""), {"store"})
    assert cfg.store is not None
    assert cfg.store.url == f"sqlite:///{tmp_path / 'data' / 'mailwarden.db'}"
    assert cfg.store.audit_key_file == tmp_path / "data" / "audit.key"


@pytest.mark.parametrize("value, problem", [("5", "must be a str, not int"), ('""', "must name a folder")])
def test_data_dir_that_names_no_folder_is_an_error(tmp_path, value, problem):
    """Not a silent fallback to ./data, which looks like a fresh, empty installation."""
    p = write(tmp_path, f"[store]\ndata_dir = {value}\n")
    for sections in ({"store"}, set()):  # also where [store] itself is not validated
        with pytest.raises(ConfigError, match=rf"\[store\] data_dir: {problem}") as exc:
            load_config(p, sections).data_dir
        assert str(p) in str(exc.value)


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration("5d") == 432000
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_secret_repr():
    assert "x" not in repr(Secret("x"))


def test_imap_connections_default_and_bounds(tmp_path, monkeypatch):
    monkeypatch.setenv("MW_TEST_UPSTREAM_PW", "x")
    assert load_config(write(tmp_path, UPSTREAM), {"upstream"}).upstream.imap_connections == 3
    assert load_config(write(tmp_path, UPSTREAM + "imap_connections = 12\n"), {"upstream"}).upstream.imap_connections == 12
    for bad in ("0", "51", '"3"'):
        with pytest.raises(ConfigError, match=r"\[upstream\] imap_connections"):
            load_config(write(tmp_path, UPSTREAM + f"imap_connections = {bad}\n"), {"upstream"})


def test_connection_and_lockout_bounds_default_and_are_checked(tmp_path):
    cfg = load_config(write(tmp_path, "[listen]\n[auth]\nmax_failures = 4\n"), {"listen", "auth"})
    assert (cfg.listen.max_connections, cfg.listen.max_connections_per_address, cfg.listen.login_timeout) == \
        (None, 20, 60.0)  # None: derived from the open-files limit at start
    assert (cfg.auth.max_failures, cfg.auth.max_failures_address, cfg.auth.max_failures_login) == (4, 40, 20)
    for section, text, problem in (
            ("listen", "max_connections = -1", r"\[listen\] max_connections: must be 0"),
            ("listen", "max_connections_per_address = 0", r"\[listen\] max_connections_per_address: must be at least 1"),
            ("listen", 'login_timeout = "0s"', r"\[listen\] login_timeout: must be more than 0"),
            ("auth", "max_failures_login = 0", r"\[auth\] max_failures_login: must be at least 1")):
        with pytest.raises(ConfigError, match=problem):
            load_config(write(tmp_path, f"[{section}]\n{text}\n"), {section})
