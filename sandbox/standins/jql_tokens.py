"""The small part of JQL the Jira stand-in understands: its words and characters, its errors, and
the tokenizer.

Why a real tokenizer: the stand-in exists to prove that phasegate's JQL cannot be subverted
by a value (a label such as `X" OR project = "SECRET`). A regex splitter would accept or
refuse such strings for the wrong reasons; this reads quoted strings, escapes, reserved
characters and reserved words the way Jira does, so an escaped quote stays inside its value
and an unquoted reserved word is refused with Jira's own wording.

The parser (`jql_parser`) builds a query from these tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
# Jira's reserved words (its JqlStringSupportImpl list); unquoted as a value they are an error.
RESERVED_WORDS = KEYWORDS | set(
    "a an abort access add after alias all alter any are as audit avg before begin between boolean break "
    "byte catch cf char character check checkpoint collate collation column commit connect continue count "
    "create current date decimal declare decrement default defaults define delete delimiter difference "
    "distinct divide do double drop else encoding end equals escape exclusive exec execute exists explain "
    "false fetch file field first float for from function go goto grant greater group having identified if "
    "immediate increment index initial inner inout input insert intersect into isolation join key last "
    "left length level like limit lock long max min minus mode modify modulo more multiply next noaudit "
    "notin nowait number object of on option outer output power previous prior privileges public raise "
    "raw remainder rename resource return returns revoke right row rowid rownum rows select session set "
    "share size sqrt start strict string subtract sum synonym table then to trans transaction trigger "
    "true uid union unique update user validate values view when whenever where while with".split()
)
RESERVED_CHARS = set("{}*/%+^$#@?;|&")
ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", " ": " "}
SPECIAL = set(" \t\r\n()=!~<>,\"'")
class JqlError(Exception):
    """A query Jira would refuse with HTTP 400; `messages` become `errorMessages`."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | op | ( | ) | , | eof
    text: str
    pos: int


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"(line {line}, character {column})"


def syntax_error(text: str, pos: int, message: str) -> JqlError:
    return JqlError([f"Error in the JQL Query: {message} {_where(text, pos)}"])


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in " \t\r\n":
            i += 1
        elif char in "(),":
            tokens.append(Token(char, char, i))
            i += 1
        elif text.startswith(("!=", "!~", ">=", "<="), i):
            tokens.append(Token("op", text[i : i + 2], i))
            i += 2
        elif char in "=~<>":
            tokens.append(Token("op", char, i))
            i += 1
        elif char in "\"'":
            value, end = _read(text, i + 1, quote=char)
            tokens.append(Token("string", value, i))
            i = end
        elif char == "!":
            raise syntax_error(text, i, "The character '!' is a reserved JQL character.")
        else:
            value, end = _read(text, i, quote=None)
            tokens.append(Token("word", value, i))
            i = end
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _read(text: str, i: int, quote: str | None) -> tuple[str, int]:
    """Read a quoted string (after its opening quote) or a bare word, resolving escapes."""
    start, out = i, list[str]()
    while i < len(text):
        char = text[i]
        if quote is not None and char == quote:
            return "".join(out), i + 1
        if quote is None and char in SPECIAL:
            break
        if char == "\\":
            if text[i + 1 : i + 2] == "u":
                digits = text[i + 2 : i + 6]
                if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                    raise syntax_error(text, i, f"'\\u{digits}' is an illegal JQL unicode escape.")
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            follower = text[i + 1 : i + 2]
            if follower not in ESCAPES:
                raise syntax_error(
                    text, i, f"'\\{follower}' is an illegal JQL escape sequence. The valid escape sequences are "
                    "\\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX.",
                )
            out.append(ESCAPES[follower])
            i += 2
            continue
        if quote is not None and (char in "\r\n" or ord(char) < 0x20):
            raise syntax_error(text, i, "The quoted string contains a line break or control character; escape it.")
        if quote is None and char in RESERVED_CHARS:
            raise syntax_error(
                text, i, f"The character '{char}' is a reserved JQL character. You must enclose it in a string "
                f"or use the escape '\\u{ord(char):04x}' instead.",
            )
        out.append(char)
        i += 1
    if quote is not None:
        raise syntax_error(text, start - 1, f"The quoted string '{''.join(out)}' has not been completed.")
    return "".join(out), i
