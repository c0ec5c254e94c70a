"""Every sub-package under the card's folders is installed (pyproject lists them one by one)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"gateway": "mailwarden.gateway", "rules": "mailwarden.rules", "signatures": "mailwarden.signatures",
           "store": "mailwarden.store", "cli": "mailwarden.cli", "tests/support": "mailwarden.testing"}


def test_every_package_folder_is_listed():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert setuptools["package-dir"] == {name: folder for folder, name in FOLDERS.items()}
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            assert ".".join((name, *rel)) in listed, f"{init.parent} is not in pyproject's packages"


def test_package_data_is_installed():
    """Shipped rule packs, signature templates and migrations sit where package-data finds them."""
    import mailwarden.rules.packs
    import mailwarden.signatures
    import mailwarden.store

    assert (Path(mailwarden.rules.packs.__file__).parent / "default.toml").is_file()
    assert list(Path(mailwarden.signatures.__file__).parent.glob("*.j2"))
    assert list((Path(mailwarden.store.__file__).parent / "migrations" / "versions").glob("0001_*.py"))
