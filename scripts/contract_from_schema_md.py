#!/usr/bin/env python3
"""Derive crates/schema/contract.json from the contract document SCHEMA.md.

Usage: contract_from_schema_md.py PATH/TO/SCHEMA.md [OUTPUT.json]

Reads only SCHEMA.md (never a migration.sql), so the JSON is an independent
statement of the contract that a catalog check can compare a database with.
Without OUTPUT the JSON is written to stdout.

Notation parsed (see SCHEMA.md): a table paragraph is `name: col type[!][ = default], ...`;
types text/int/float/bool/jsonb/ts/text[]; `!` = NOT NULL; `now` = CURRENT_TIMESTAMP.
Types and defaults are emitted in PostgreSQL's catalog spelling:
format_type(atttypid, atttypmod) and pg_get_expr(adbin, adrelid) (PostgreSQL 15).
"""

import json
import re
import sys

MIGRATION = "20251111113117_add_phase8_and_phase9_features"

# SCHEMA.md leaves email_templates.footerText's default as "(a copyright line)";
# this is the ASCII text the bundle's migration uses for it.
COPYRIGHT_LINE = "Copyright (c) 2025 Travel Deals. All rights reserved."

TYPES = {
    "text": "text",
    "int": "integer",
    "float": "double precision",
    "bool": "boolean",
    "jsonb": "jsonb",
    "ts": "timestamp(3) without time zone",
    "text[]": "text[]",
}

COLUMN_RE = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>text\[\]|text|int|float|bool|jsonb|ts)"
    r"(?P<notnull>!)?(?:\s*=\s*(?P<default>.+))?$"
)
TABLE_RE = re.compile(r"^(?P<table>[a-z_][a-z0-9_]*):\s+(?P<cols>.*)$", re.S)
INDEX_REF_RE = re.compile(r"(?P<table>[a-z_][a-z0-9_]*)\((?P<cols>[^)]*)\)")
FK_RE = re.compile(
    r"^-\s+`(?P<name>[^`]+)`:\s+(?P<table>[a-z_][a-z0-9_]*)\((?P<cols>[^)]*)\)\s+"
    r"references\s+(?P<rtable>[a-z_][a-z0-9_]*)\((?P<rcols>[^)]*)\),\s+"
    r"ON DELETE (?P<del>[A-Z ]+?)\s+ON UPDATE (?P<upd>[A-Z ]+?)\.$"
)


def fail(msg):
    sys.exit(f"contract_from_schema_md: {msg}")


def catalog_default(raw, pgtype, where):
    """Spelling of pg_get_expr(adbin, adrelid) for a default written in SCHEMA.md."""
    raw = raw.strip()
    if raw == "now":
        return "CURRENT_TIMESTAMP"
    if raw in ("true", "false"):
        if pgtype != "boolean":
            fail(f"{where}: boolean default on {pgtype}")
        return raw
    if re.fullmatch(r"-?\d+", raw):
        if pgtype not in ("integer", "double precision"):
            fail(f"{where}: numeric default on {pgtype}")
        # Both INTEGER and DOUBLE PRECISION integer-literal defaults deparse as the bare literal.
        return raw
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        if pgtype != "text":
            fail(f"{where}: string default on {pgtype}")
        return f"{raw}::text"
    if raw == "(a copyright line)":
        return "'" + COPYRIGHT_LINE.replace("'", "''") + "'::text"
    fail(f"{where}: unrecognised default {raw!r}")


def sections(text):
    """Split the document into {heading: body} on '## ' headings."""
    out, current, buf = {}, None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if current is not None:
                out[current] = "\n".join(buf)
            current, buf = line[3:].strip(), []
        else:
            buf.append(line)
    if current is not None:
        out[current] = "\n".join(buf)
    return out


def paragraphs(body):
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]


def parse_tables(secs):
    tables = []
    for heading, body in secs.items():
        if not heading.startswith("Phase "):
            continue
        for para in paragraphs(body):
            m = TABLE_RE.match(para)
            if not m:
                continue
            name = m.group("table")
            columns = []
            for item in m.group("cols").split(","):
                item = item.strip()
                cm = COLUMN_RE.match(item)
                if not cm:
                    fail(f"{name}: cannot parse column {item!r}")
                pgtype = TYPES[cm.group("type")]
                default = cm.group("default")
                columns.append({
                    "name": cm.group("name"),
                    "type": pgtype,
                    "nullable": cm.group("notnull") is None,
                    "default": None if default is None
                    else catalog_default(default, pgtype, f"{name}.{cm.group('name')}"),
                })
            names = [c["name"] for c in columns]
            if len(set(names)) != len(names):
                fail(f"{name}: duplicate column")
            if "id" not in names:
                fail(f"{name}: no id column")
            tables.append({"name": name, "columns": columns, "primary_key": ["id"]})
    return tables


def split_cols(s):
    return [c.strip() for c in s.split(",") if c.strip()]


def parse_indexes(secs):
    unique_body = next((b for h, b in secs.items() if h.startswith("Unique indexes")), None)
    regular_body = next((b for h, b in secs.items() if h.startswith("Regular indexes")), None)
    if unique_body is None or regular_body is None:
        fail("missing index sections")
    indexes = []
    # Unique: "table(cols); table(cols); ... ." after the naming sentence.
    ulist = " ".join(unique_body.split())
    ulist = ulist.split("_key`:", 1)[1] if "_key`:" in ulist else ulist
    for m in INDEX_REF_RE.finditer(ulist):
        cols = split_cols(m.group("cols"))
        t = m.group("table")
        indexes.append({"name": f"{t}_{'_'.join(cols)}_key", "table": t,
                        "columns": cols, "unique": True})
    # Regular: "- table: (cols), (cols)" lines.
    for line in regular_body.splitlines():
        m = re.match(r"^-\s+([a-z_][a-z0-9_]*):\s+(.*)$", line.strip())
        if not m:
            continue
        t = m.group(1)
        for cm in re.finditer(r"\(([^)]*)\)", m.group(2)):
            cols = split_cols(cm.group(1))
            indexes.append({"name": f"{t}_{'_'.join(cols)}_idx", "table": t,
                            "columns": cols, "unique": False})
    return indexes, unique_body, regular_body


def parse_fks(secs):
    body = next((b for h, b in secs.items() if h.startswith("Foreign keys")), None)
    if body is None:
        fail("missing foreign key section")
    fks = []
    items, cur = [], []
    for line in body.splitlines():
        if line.startswith("- "):
            if cur:
                items.append(" ".join(cur))
            cur = [line.strip()]
        elif cur and line.strip():
            cur.append(line.strip())
    if cur:
        items.append(" ".join(cur))
    for item in items:
        m = FK_RE.match(item)
        if not m:
            fail(f"cannot parse foreign key {item!r}")
        fks.append({
            "name": m.group("name"),
            "table": m.group("table"),
            "columns": split_cols(m.group("cols")),
            "references_table": m.group("rtable"),
            "references_columns": split_cols(m.group("rcols")),
            "on_delete": m.group("del"),
            "on_update": m.group("upd"),
        })
    return fks


def stated_count(pattern, text, what):
    m = re.search(pattern, text)
    if not m:
        fail(f"SCHEMA.md states no count of {what}")
    return int(m.group(1))


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    text = open(argv[1], encoding="utf-8").read()
    flat = " ".join(text.split())
    if MIGRATION not in text:
        fail(f"migration id {MIGRATION} not in SCHEMA.md")
    secs = sections(text)
    tables = parse_tables(secs)
    indexes, _, _ = parse_indexes(secs)
    fks = parse_fks(secs)

    # Cross-check the parse against the counts SCHEMA.md states.
    expect = {
        "tables": stated_count(r"creates (\d+) tables", flat, "tables"),
        "unique": stated_count(r"## Unique indexes \((\d+)\)", text, "unique indexes"),
        "regular": stated_count(r"## Regular indexes \((\d+)\)", text, "regular indexes"),
        "fks": stated_count(r"## Foreign keys \((\d+)\)", text, "foreign keys"),
    }
    got = {
        "tables": len(tables),
        "unique": sum(1 for i in indexes if i["unique"]),
        "regular": sum(1 for i in indexes if not i["unique"]),
        "fks": len(fks),
    }
    if got != expect:
        fail(f"parsed {got}, SCHEMA.md states {expect}")

    table_cols = {t["name"]: {c["name"] for c in t["columns"]} for t in tables}
    names = set()
    for i in indexes:
        if i["table"] not in table_cols:
            fail(f"index {i['name']} on unknown table")
        missing = set(i["columns"]) - table_cols[i["table"]]
        if missing:
            fail(f"index {i['name']} on unknown columns {missing}")
        if i["name"] in names:
            fail(f"duplicate index name {i['name']}")
        names.add(i["name"])
    for fk in fks:
        if fk["table"] not in table_cols or set(fk["columns"]) - table_cols[fk["table"]]:
            fail(f"foreign key {fk['name']} on unknown table/columns")
        if fk["references_table"] in table_cols and \
                set(fk["references_columns"]) - table_cols[fk["references_table"]]:
            fail(f"foreign key {fk['name']} references unknown columns")
    # PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
    for ident in [t["name"] for t in tables] + [f"{t['name']}_pkey" for t in tables] \
            + [i["name"] for i in indexes] + [f["name"] for f in fks]:
        if len(ident.encode("utf-8")) > 63:
            fail(f"identifier over 63 bytes: {ident}")

    contract = {
        "migration": MIGRATION,
        "tables": tables,
        "indexes": indexes,
        "foreign_keys": fks,
    }
    out = json.dumps(contract, indent=2, ensure_ascii=False) + "\n"
    if len(argv) == 3:
        with open(argv[2], "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)


if __name__ == "__main__":
    main(sys.argv)
