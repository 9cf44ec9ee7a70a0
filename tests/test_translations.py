from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask_babel import get_translations

ROOT = Path(__file__).parent.parent
TRANSLATIONS = ROOT / "bilten_core" / "translations"
EXTRACT = (
    ".venv/bin/pybabel extract -F babel.cfg -k lazy_gettext -o bilten_core/translations/messages.pot "
    "bilten_core plugins tenants"
)


def test_the_app_loads_the_compiled_english_catalog(app):
    with app.test_request_context(headers={"Host": "localhost", "Accept-Language": "en"}):
        files = [Path(f) for f in get_translations().files]
    assert TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo" in files


def test_every_marked_string_is_in_the_message_catalog():
    with (ROOT / "babel.cfg").open() as mapping_file:
        method_map, options_map = parse_mapping_cfg(mapping_file)
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None}
    in_code = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for folder in ("bilten_core", "plugins", "tenants")
        for message in extract_from_dir(ROOT / folder, method_map, options_map, keywords=keywords)
    }
    with (TRANSLATIONS / "messages.pot").open("rb") as pot:
        in_catalog = {message.id if isinstance(message.id, str) else message.id[0] for message in read_po(pot)}
    missing = sorted(in_code - in_catalog - {""})
    assert not missing, f"run `make messages` ({EXTRACT}, then update and compile); not in messages.pot: {missing}"
