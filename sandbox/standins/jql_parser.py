"""The small part of JQL the Jira stand-in understands: tokenizer and parser.

Why a real tokenizer: the stand-in exists to prove that phasegate's JQL cannot be subverted
by a value (a label such as `X" OR project = "SECRET`). A regex splitter would accept or
refuse such strings for the wrong reasons; this reads quoted strings, escapes, reserved
characters and reserved words the way Jira does, so an escaped quote stays inside its value
and an unquoted reserved word is refused with Jira's own wording.

Evaluating a parsed query against issues lives in `jql_eval`, which builds on these types.

    query = parse('project = ACME AND labels IN ("a", b) ORDER BY key ASC')
    query.where, query.order_by  # a Clause/BoolOp/Not tree and ((field, descending), ...)
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
# JQL name (lower case) -> canonical field; "Epic Link" is Data Center's name for an epic parent.
FIELDS = {
    "project": "project", "key": "key", "issuekey": "key", "labels": "labels", "parent": "parent",
    "epic link": "parent", "fixversion": "fixVersion", "component": "component", "status": "status",
    "statuscategory": "statusCategory", "issuetype": "issuetype", "type": "issuetype", "summary": "summary",
}
TEXT_FIELDS = {"summary"}
RELATIONAL = {">", ">=", "<", "<="}  # on `key` only: numeric within one project, as Jira compares keys
SORTABLE = {"key", "created", "updated", "summary", "status", "project", "resolutiondate", "issuetype"}
SORT_ALIASES = {"issuekey": "key", "resolved": "resolutiondate", "type": "issuetype"}


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


@dataclass(frozen=True)
class Clause:
    field: str  # canonical name from FIELDS
    op: str  # = != ~ !~ in "not in" "is" "is not"
    values: tuple[str, ...]
    name: str  # as written, for messages


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Clause | BoolOp | Not


@dataclass(frozen=True)
class Query:
    where: Node | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"(line {line}, character {column})"


def _syntax(text: str, pos: int, message: str) -> JqlError:
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
            raise _syntax(text, i, "The character '!' is a reserved JQL character.")
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
                    raise _syntax(text, i, f"'\\u{digits}' is an illegal JQL unicode escape.")
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            follower = text[i + 1 : i + 2]
            if follower not in ESCAPES:
                raise _syntax(
                    text, i, f"'\\{follower}' is an illegal JQL escape sequence. The valid escape sequences are "
                    "\\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX.",
                )
            out.append(ESCAPES[follower])
            i += 2
            continue
        if quote is not None and (char in "\r\n" or ord(char) < 0x20):
            raise _syntax(text, i, "The quoted string contains a line break or control character; escape it.")
        if quote is None and char in RESERVED_CHARS:
            raise _syntax(
                text, i, f"The character '{char}' is a reserved JQL character. You must enclose it in a string "
                f"or use the escape '\\u{ord(char):04x}' instead.",
            )
        out.append(char)
        i += 1
    if quote is not None:
        raise _syntax(text, start - 1, f"The quoted string '{''.join(out)}' has not been completed.")
    return "".join(out), i


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() == word

    def fail(self, expecting: str) -> JqlError:
        got = "the end of the query" if self.tok.kind == "eof" else f"'{self.tok.text}'"
        return _syntax(self.text, self.tok.pos, f"Expecting {expecting} but got {got}.")

    def query(self) -> Query:
        where = None if self.tok.kind == "eof" or self.is_kw("order") else self.or_()
        order: list[tuple[str, bool]] = []
        if self.is_kw("order"):
            self.take()
            if not self.is_kw("by"):
                raise self.fail("'BY'")
            self.take()
            order.append(self.sort_item())
            while self.tok.kind == ",":
                self.take()
                order.append(self.sort_item())
        if self.tok.kind != "eof":
            raise self.fail("either 'OR' or 'AND'")
        return Query(where, tuple(order))

    def sort_item(self) -> tuple[str, bool]:
        token = self.take()
        name = token.text.lower()
        field = SORT_ALIASES.get(name, FIELDS.get(name, name))
        if token.kind not in ("word", "string") or field not in SORTABLE:
            raise JqlError([f"Field '{token.text}' does not exist or you do not have permission to view it."])
        descending = False
        if self.is_kw("asc") or self.is_kw("desc"):
            descending = self.take().text.lower() == "desc"
        return field, descending

    def or_(self) -> Node:
        children = [self.and_()]
        while self.is_kw("or"):
            self.take()
            children.append(self.and_())
        return children[0] if len(children) == 1 else BoolOp("or", tuple(children))

    def and_(self) -> Node:
        children = [self.not_()]
        while self.is_kw("and"):
            self.take()
            children.append(self.not_())
        return children[0] if len(children) == 1 else BoolOp("and", tuple(children))

    def not_(self) -> Node:
        if self.is_kw("not"):
            self.take()
            return Not(self.not_())
        if self.tok.kind == "(":
            self.take()
            node = self.or_()
            if self.tok.kind != ")":
                raise self.fail("')'")
            self.take()
            return node
        return self.clause()

    def clause(self) -> Clause:
        token = self.tok
        if token.kind not in ("word", "string") or (token.kind == "word" and token.text.lower() in KEYWORDS):
            raise self.fail("a field name")
        self.take()
        field = FIELDS.get(token.text.lower())
        if field is None:
            raise JqlError([f"Field '{token.text}' does not exist or you do not have permission to view it."])
        op_token = self.tok
        if self.is_kw("in") or self.is_kw("not"):
            op = "in" if self.take().text.lower() == "in" else "not in"
            if op == "not in" and not self.is_kw("in"):
                raise self.fail("'IN'")
            if op == "not in":
                self.take()
            values = self.value_list()
        elif self.is_kw("is"):
            self.take()
            op = "is"
            if self.is_kw("not"):
                self.take()
                op = "is not"
            if not (self.is_kw("empty") or self.is_kw("null")):
                raise self.fail("'EMPTY' or 'NULL'")
            self.take()
            values = ()
        elif op_token.kind == "op":
            op = self.take().text
            values = (self.value(),)
        else:
            raise self.fail("an operator ('=', '!=', '~', '!~', 'in', 'not in', 'is', 'is not')")
        allowed = {"~", "!~", "is", "is not"} if field in TEXT_FIELDS else {"=", "!=", "in", "not in", "is", "is not"}
        if field == "key":
            allowed |= RELATIONAL
        if op not in allowed:
            raise JqlError([f"The operator '{op}' is not supported by the '{token.text}' field."])
        return Clause(field, op, values, token.text)

    def value_list(self) -> tuple[str, ...]:
        if self.tok.kind != "(":
            raise self.fail("'('")
        self.take()
        values = [self.value()]
        while self.tok.kind == ",":
            self.take()
            values.append(self.value())
        if self.tok.kind != ")":
            raise self.fail("')'")
        self.take()
        return tuple(values)

    def value(self) -> str:
        token = self.tok
        if token.kind == "string":
            return self.take().text
        if token.kind != "word":
            raise self.fail("either a value, list or function")
        if token.text.lower() in RESERVED_WORDS:
            raise _syntax(
                self.text, token.pos, f"'{token.text}' is a reserved JQL word. You must surround it in "
                "quotation marks to use it in a query.",
            )
        self.take()
        if self.tok.kind == "(":
            raise JqlError([f"Unable to find JQL function '{token.text}()'."])
        return token.text


def parse(text: str) -> Query:
    """Parse `text` or raise JqlError with Jira's wording."""
    return _Parser(text).query()
