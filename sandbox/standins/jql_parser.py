"""The small part of JQL the Jira stand-in understands: the parser, from tokens (`jql_tokens`) to a
query tree of clauses, AND/OR and NOT, and its ORDER BY.

Evaluating a parsed query against issues lives in `jql_eval`, which builds on these types.

    query = parse('project = ACME AND labels IN ("a", b) ORDER BY key ASC')
    query.where, query.order_by  # a Clause/BoolOp/Not tree and ((field, descending), ...)
"""

from __future__ import annotations

from dataclasses import dataclass

from phasegate.sandbox.standins.jql_tokens import KEYWORDS, RESERVED_WORDS, JqlError, Token, syntax_error, tokenize

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
        return syntax_error(self.text, self.tok.pos, f"Expecting {expecting} but got {got}.")

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
            raise syntax_error(
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
