"""The Russian message catalogue: complete, placeholders intact, compiled, and in step with the source."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polib
import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "abonent"
LC_MESSAGES = PACKAGE_DIR / "locale" / "ru" / "LC_MESSAGES"
PO_PATH = LC_MESSAGES / "django.po"
MO_PATH = LC_MESSAGES / "django.mo"

RU_PLURAL_FORMS = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);"
)

# printf-style conversions as Python's %-formatting reads them; "%%" is a literal percent sign.
PRINTF = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(?P<conv>[diouxXeEfFgGcrsa%])"
)
NAMED = re.compile(r"%\((?P<name>[^)]*)\)")
TEMPLATE_VAR = re.compile(r"\{\{\s*(.*?)\s*\}\}")
BRACE_FIELD = re.compile(r"(?<!\{)\{(?!\{)([A-Za-z_][\w.\[\]]*(?:![rsa])?(?::[^{}]*)?)\}(?!\})")


def _po() -> polib.POFile:
    return polib.pofile(str(PO_PATH))


def _label(entry) -> str:
    return f"{entry.msgctxt}|{entry.msgid}" if entry.msgctxt else entry.msgid


def _placeholders(text: str, flags: list[str]) -> Counter:
    found: Counter = Counter()
    if "python-format" in flags or "c-format" in flags:
        for m in PRINTF.finditer(text):
            if m["conv"] != "%":
                found[m.group(0)] += 1
    else:
        # Without the flag a lone "%" is just a percent sign; named placeholders are still placeholders.
        for m in NAMED.finditer(text):
            found[f"%({m['name']})"] += 1
    for m in TEMPLATE_VAR.finditer(text):
        found["{{ " + m[1] + " }}"] += 1
    for m in BRACE_FIELD.finditer(text):
        found["{" + m[1] + "}"] += 1
    return found


def test_ru_catalogue_header():
    po = _po()
    assert po.metadata.get("Language") == "ru"
    assert "charset=UTF-8" in po.metadata.get("Content-Type", "")
    assert po.metadata.get("Plural-Forms") == RU_PLURAL_FORMS
    assert not po.metadata_is_fuzzy, "the header is still marked fuzzy"


def test_every_ru_entry_is_translated_and_not_fuzzy_or_obsolete():
    po = _po()
    obsolete = [_label(e) for e in po.obsolete_entries()]
    fuzzy = [_label(e) for e in po if "fuzzy" in e.flags and not e.obsolete]
    untranslated = []
    for e in po:
        if e.obsolete:
            continue
        if e.msgid_plural:
            forms = [e.msgstr_plural.get(i, "") for i in range(3)]
            if len(e.msgstr_plural) != 3 or not all(forms):
                untranslated.append(_label(e))
        elif not e.msgstr:
            untranslated.append(_label(e))
    assert not obsolete, f"obsolete entries (run `make messages`): {obsolete}"
    assert not fuzzy, f"fuzzy entries (check the translation, then drop the flag): {fuzzy}"
    assert not untranslated, f"untranslated entries (Russian plurals need 3 forms): {untranslated}"


def test_ru_placeholders_match_the_source():
    problems = []
    for e in _po():
        if e.obsolete:
            continue
        if e.msgid_plural:
            pairs = [(e.msgid_plural, e.msgstr_plural[i], f"msgstr[{i}]") for i in sorted(e.msgstr_plural)]
        else:
            pairs = [(e.msgid, e.msgstr, "msgstr")]
        for source, translation, where in pairs:
            if not translation:
                continue  # reported by the completeness test
            expected, got = _placeholders(source, e.flags), _placeholders(translation, e.flags)
            if expected != got:
                problems.append(
                    f"{_label(e)!r} {where}: expected {sorted(expected.elements())}, got {sorted(got.elements())}"
                )
    assert not problems, "placeholders differ between msgid and msgstr:\n" + "\n".join(problems)


def _mapping(catalogue) -> dict:
    mapping = {}
    for e in catalogue:
        if e.obsolete or "fuzzy" in e.flags or not e.msgid:
            continue  # msgfmt leaves fuzzy and obsolete entries, and the header, out of the .mo
        key = (e.msgctxt, e.msgid, e.msgid_plural or None)
        if e.msgid_plural:
            mapping[key] = tuple(e.msgstr_plural[i] for i in sorted(e.msgstr_plural))
        else:
            mapping[key] = e.msgstr
    return mapping


def test_compiled_mo_is_up_to_date_with_the_po():
    assert MO_PATH.exists(), (
        "abonent/locale/ru/LC_MESSAGES/django.mo is missing: run `make messages` and commit abonent/locale"
    )
    po, mo = _mapping(_po()), _mapping(polib.mofile(str(MO_PATH)))
    stale = sorted({k[1] for k in po.keys() ^ mo.keys()} | {k[1] for k in po.keys() & mo.keys() if po[k] != mo[k]})
    assert not stale, f"django.mo differs from django.po for {stale}: run `make messages` and commit abonent/locale"


@pytest.mark.slow
def test_ru_catalogue_has_every_string_of_the_source(tmp_path):
    """Extract the strings afresh from a copy of the package, so the repository is never touched."""
    if not shutil.which("xgettext") or not shutil.which("msguniq"):
        pytest.skip("GNU gettext tools are not installed")
    copy = tmp_path / "src" / "abonent"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for stale in (copy / "locale" / "ru" / "LC_MESSAGES").glob("django.*"):
        stale.unlink()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "abonent.settings",
        "PYTHONPATH": str(copy.parent),
        "ABONENT_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": "",
    }
    # makemessages writes into the locale dir of whichever package settings come from: make sure it is the copy.
    where = subprocess.run(
        [sys.executable, "-c", "import abonent.settings as s; print(s.BASE_DIR)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).resolve() == copy.resolve(), f"the copy is shadowed by {where}; refusing to run makemessages"

    result = subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "ru", "--no-location"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    fresh = polib.pofile(str(copy / "locale" / "ru" / "LC_MESSAGES" / "django.po"))

    committed = {(e.msgctxt, e.msgid): e for e in _po() if not e.obsolete and "fuzzy" not in e.flags}
    missing = []
    for e in fresh:
        if not e.msgid or e.obsolete:
            continue
        ours = committed.get((e.msgctxt, e.msgid))
        if ours is None:
            missing.append(_label(e))
        elif e.msgid_plural:
            if not ours.msgstr_plural or not all(ours.msgstr_plural.values()):
                missing.append(_label(e))
        elif not ours.msgstr:
            missing.append(_label(e))
    assert not missing, (
        f"{len(missing)} source strings have no Russian translation: {missing}; run `make messages`, translate, commit"
    )
