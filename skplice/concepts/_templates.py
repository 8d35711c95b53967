"""Prompt templates: text with exactly one empty ``{}`` field where a name goes.

Templates are parsed once, with :class:`string.Formatter` (``str.format``'s own grammar),
so that every malformed one gets the same clear error wherever it is given, and filling
a template never re-parses the name put into it.
"""

from string import Formatter
from typing import NamedTuple


class Template(NamedTuple):
    """A parsed template: the literal text around its ``{}`` field (braces unescaped)."""

    before: str
    after: str

    def fill(self, name):
        """The template with ``name`` in its field."""
        return f"{self.before}{name}{self.after}"


def parse_template(template, argument="template"):
    """Parse a prompt template, refusing anything but exactly one empty ``{}`` field.

    Literal braces are written ``{{`` and ``}}``, as in :meth:`str.format`.
    ``argument`` names the parameter in error messages.

    Examples
    --------
    >>> from skplice.concepts._templates import parse_template
    >>> parse_template("a photo of a {}.").fill("dog")
    'a photo of a dog.'
    >>> parse_template("{{{}}}").fill("set")
    '{set}'
    >>> parse_template("a {} and {}")
    Traceback (most recent call last):
    ...
    ValueError: template='a {} and {}' must contain exactly one '{}' ...; it has 2 fields...
    """
    if not isinstance(template, str):
        raise TypeError(
            f"{argument} must be a string with one '{{}}' where the name goes; got "
            f"{type(template).__name__} {template!r}."
        )
    try:
        parts = list(Formatter().parse(template))
    except ValueError as exc:  # e.g. "Single '{' encountered in format string"
        problem = str(exc)
    else:
        fields = [part for part in parts if part[1] is not None]
        if len(fields) == 1 and fields[0][1:] == ("", "", None):
            split = parts.index(fields[0]) + 1
            before = "".join(literal for literal, *_ in parts[:split])
            after = "".join(literal for literal, *_ in parts[split:])
            return Template(before, after)
        shown = ", ".join(repr(_field_text(field)) for field in fields)
        if len(fields) != 1:
            problem = f"it has {len(fields)} fields" + (f" ({shown})" if fields else "")
        else:
            problem = f"its field {shown} is not empty"
    raise ValueError(
        f"{argument}={template!r} must contain exactly one '{{}}' where the name goes, "
        f"e.g. 'a photo of a {{}}.'; {problem}. Write '{{{{' and '}}}}' for literal braces."
    )


def _field_text(field):
    _, name, spec, conversion = field
    return (
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    )
