"""Templates: the shipped default, the team > role > company choice, validation at load,
and the fallback to the plain company signature when a template fails at send time."""

from __future__ import annotations

from pathlib import Path

import pytest
from sigkit import COMPANY, JOSE, MUELLER, PNG_1PX, ZHANG, content, crlf, norm, sigs, write_templates

from mailwarden.signatures import (
    SignatureCompany,
    SignatureSettings,
    SignatureTemplateError,
    SignatureUser,
    apply_signature,
    load_signatures,
    render,
)
from mailwarden.signatures.htmlsig import html_to_text

PAIR = {
    "company.txt.j2": "{{ user.name }} - company template\n{{ company.name }}\n",
    "company.html.j2": "<p>{{ user.name }} - company template</p><p>{{ company.name }}</p>",
    "team/export.txt.j2": "{{ user.name }} - export team\n{{ company.name }}\n",
    "team/export.html.j2": "<p>{{ user.name }} - export team</p><p>{{ company.name }}</p>",
    "role/senior.txt.j2": "{{ user.name }} - senior\n{{ company.name }}\n",
    "role/senior.html.j2": "<p>{{ user.name }} - senior</p><p>{{ company.name }}</p>",
}


def test_default_template_ships_with_name_and_official_contacts() -> None:
    rendered = render(sigs(), ZHANG, None)
    assert rendered.template == "default"
    for needle in ("张伟", "Export Sales Manager", COMPANY.name, "+86 571 8888 0000", "WeChat: ACME_Official",
                   "www.acme.example", "+86 138 0000 1111"):
        assert needle in rendered.text
        assert needle in rendered.html


def test_default_text_and_html_say_the_same() -> None:
    for user in (ZHANG, MUELLER, JOSE):
        rendered = render(sigs(), user, "Customer GmbH")
        assert norm(html_to_text(rendered.html)) == norm(rendered.text)


def test_default_template_omits_missing_fields() -> None:
    rendered = render(sigs(), JOSE, None)
    assert "None" not in rendered.text and "Tel:" not in rendered.text and "Email:" not in rendered.text
    assert rendered.text.splitlines()[0] == "José Núñez"


def test_choice_is_team_then_role_then_company(tmp_path: Path) -> None:
    s = sigs(template_dir=write_templates(tmp_path, PAIR))
    assert render(s, ZHANG, None).template == "team/export"  # team export, role sales
    assert render(s, MUELLER, None).template == "role/senior"  # no team, role senior
    assert render(s, JOSE, None).template == "company"
    both = SignatureUser("x", "X", team="export", role="senior")
    assert render(s, both, None).template == "team/export"
    assert "export team" in render(s, both, None).text
    assert s.levels == ["team/export", "role/senior", "company", "default"]


def test_variables_user_company_customer(tmp_path: Path) -> None:
    s = sigs(template_dir=write_templates(tmp_path, {
        "company.txt.j2": "{{ user.name }} for {{ customer or 'you' }} at {{ company.name }}",
        "company.html.j2": "<b>{{ user.name }}</b> for {{ customer or 'you' }} at {{ company.name }}",
    }))
    assert render(s, ZHANG, "Bolt & Nut <GmbH>").text == f"张伟 for Bolt & Nut <GmbH> at {COMPANY.name}"
    assert "Bolt &amp; Nut &lt;GmbH&gt;" in render(s, ZHANG, "Bolt & Nut <GmbH>").html


def test_html_is_autoescaped_text_is_not() -> None:
    evil = SignatureUser("e", "<script>alert(1)</script> O'Brien & Co")
    rendered = render(sigs(), evil, None)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert rendered.text.startswith("<script>alert(1)</script> O'Brien & Co")


def test_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    write_templates(tmp_path, {**PAIR, "team/export.html.j2": "<p>{{ user.name }}</p>\n<p>{% if %}</p>\n"})
    with pytest.raises(SignatureTemplateError) as err:
        sigs(template_dir=tmp_path)
    assert str(tmp_path / "team" / "export.html.j2") in str(err.value)
    assert err.value.line == 2 and ":2:" in str(err.value)


def test_undefined_variable_fails_the_load_with_template_and_line(tmp_path: Path) -> None:
    write_templates(tmp_path, {**PAIR, "role/senior.txt.j2": "{{ user.name }}\n{{ company.name }}\n{{ user.wechat }}\n"})
    with pytest.raises(SignatureTemplateError) as err:
        sigs(template_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "role" / "senior.txt.j2") in message and ":3:" in message
    assert "wechat" in message


def test_template_failing_for_a_user_without_optional_fields_fails_the_load(tmp_path: Path) -> None:
    write_templates(tmp_path, {**PAIR, "company.txt.j2": "{{ user.name }}\n{{ user.title.upper() }}\n"})
    with pytest.raises(SignatureTemplateError) as err:
        sigs(template_dir=tmp_path)
    assert "company.txt.j2:2:" in str(err.value) and "without title" in str(err.value)


def test_half_a_pair_is_an_error(tmp_path: Path) -> None:
    write_templates(tmp_path, {"team/export.html.j2": "<p>{{ user.name }}</p>"})
    with pytest.raises(SignatureTemplateError, match=r"export\.txt\.j2 is missing"):
        sigs(template_dir=tmp_path)


def test_missing_include_is_named(tmp_path: Path) -> None:
    write_templates(tmp_path, {**PAIR, "company.html.j2": "<p>x</p>\n{% include 'partials/nope.html.j2' %}"})
    with pytest.raises(SignatureTemplateError, match="nope.html.j2"):
        sigs(template_dir=tmp_path)


def test_site_template_may_include_partials_and_the_builtin(tmp_path: Path) -> None:
    s = sigs(template_dir=write_templates(tmp_path, {
        "partials/contacts.txt.j2": "Office: {{ company.official_phones | join(', ') }}",
        "company.txt.j2": "{{ user.name }}\n{% include 'partials/contacts.txt.j2' %}\n",
        "company.html.j2": "{% include 'builtin/default.html.j2' %}",
    }))
    rendered = render(s, ZHANG, None)
    assert rendered.text == "张伟\nOffice: +86 571 8888 0000"
    assert "Export Sales Manager" in rendered.html


def test_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    write_templates(tmp_path, {**PAIR, "company.txt.j2": "{{ user.__class__.__mro__ }}\n{{ user.name }}"})
    with pytest.raises(SignatureTemplateError):
        sigs(template_dir=tmp_path)


def test_missing_variable_at_send_time_falls_back_to_company_signature(tmp_path: Path) -> None:
    # Passes the load (only fails for one customer), so the failure happens at send time.
    write_templates(tmp_path, {
        "company.txt.j2": "{{ user.name }} custom\n{% if customer == 'Evil Corp' %}{{ discount }}{% endif %}\n",
        "company.html.j2": "<p>{{ user.name }} custom</p>",
    })
    s = sigs(template_dir=tmp_path)
    message = crlf("From: zhangwei@acme.example\nTo: a@evil.example\nSubject: hi\n\nHello\n")
    result = apply_signature(message, s, ZHANG, "Evil Corp")
    assert result.applied and result.fallback and result.untouched_reason is None
    assert result.detail is not None and "company.txt.j2:2:" in result.detail and "discount" in result.detail
    body = content(result.message, "text/plain")
    assert "Hello" in body and COMPANY.name in body and "+86 571 8888 0000" in body and "custom" not in body
    ok = apply_signature(message, s, ZHANG, "Good Corp")
    assert ok.applied and not ok.fallback and "custom" in content(ok.message, "text/plain")


def test_unreadable_logo_is_a_load_error(tmp_path: Path) -> None:
    company = SignatureCompany(**{**COMPANY.__dict__, "logo": tmp_path / "missing.png"})
    with pytest.raises(SignatureTemplateError, match="missing.png"):
        load_signatures(SignatureSettings(), company)


def test_logo_gets_a_stable_content_id(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(PNG_1PX)
    company = SignatureCompany(**{**COMPANY.__dict__, "logo": tmp_path / "logo.png"})
    a = load_signatures(SignatureSettings(), company)
    b = load_signatures(SignatureSettings(), company)
    assert a.logo is not None and b.logo is not None and a.logo.cid == b.logo.cid
    assert a.logo.cid.endswith("@acme.example")
    assert f"cid:{a.logo.cid}" in render(a, ZHANG, None).html


def test_bad_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(SignatureTemplateError, match="unalterable"):
        sigs(unalterable="drop")
    with pytest.raises(SignatureTemplateError, match="template_dir"):
        sigs(template_dir=tmp_path / "nope")
