"""Phones for display (``abonent.core.phones``), and the ``phone`` template filter that uses it."""

from django.template import Context, Template

from abonent.core.phones import format_phone


def test_an_e164_number_is_shown_grouped():
    assert format_phone("+79161234567") == "+7 916 123-45-67"
    assert format_phone("+375291234567") == "+375 29 123-45-67"


def test_a_value_that_is_no_phone_number_comes_back_as_is():
    assert format_phone("call the office") == "call the office"
    assert format_phone("") == ""


def test_the_template_filter_formats_and_leaves_empty_values_empty():
    template = Template("{% load abonent %}[{{ a|phone }}][{{ b|phone }}]")
    assert template.render(Context({"a": "+79161234567", "b": None})) == "[+7 916 123-45-67][]"
