//! The schema contract in machine-readable form, and the live catalog read
//! into the same shape, so "does the database match the contract" is a
//! plain comparison of two values.
//!
//! `contract.json` is derived from the contract document (`SCHEMA.md`) by
//! `scripts/contract_from_schema_md.py`, independently of the migration SQL,
//! so a mistake in one shows up as a difference against the other. Types
//! and defaults are spelled as PostgreSQL's `format_type` and `pg_get_expr`
//! print them.

use std::fmt;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

const CONTRACT_JSON: &str = include_str!("../contract.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub migration: String,
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
    pub foreign_keys: Vec<ForeignKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// The primary key constraint's name when read from the catalog; the
    /// contract implies `<table>_pkey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub unique: bool,
    /// Access method, partial predicate or expressions, when read from the
    /// catalog and not a plain B-tree over columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irregular: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub references_table: String,
    pub references_columns: Vec<String>,
    pub on_delete: String,
    pub on_update: String,
}

/// The size of a schema, as the README reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub tables: usize,
    pub columns: usize,
    pub primary_keys: usize,
    pub unique_indexes: usize,
    pub regular_indexes: usize,
    pub foreign_keys: usize,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tables, {} columns, {} primary keys, {} unique indexes, {} regular indexes, {} foreign keys",
            self.tables,
            self.columns,
            self.primary_keys,
            self.unique_indexes,
            self.regular_indexes,
            self.foreign_keys
        )
    }
}

/// One way the database differs from the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub object: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.object, self.expected, self.found
        )
    }
}

impl Contract {
    /// The contract compiled into this binary.
    pub fn embedded() -> Self {
        serde_json::from_str(CONTRACT_JSON).expect("contract.json is checked by the test suite")
    }

    pub fn table_names(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.name.clone()).collect()
    }

    pub fn figures(&self) -> Figures {
        Figures {
            tables: self.tables.len(),
            columns: self.tables.iter().map(|t| t.columns.len()).sum(),
            primary_keys: self
                .tables
                .iter()
                .filter(|t| !t.primary_key.is_empty())
                .count(),
            unique_indexes: self.indexes.iter().filter(|i| i.unique).count(),
            regular_indexes: self.indexes.iter().filter(|i| !i.unique).count(),
            foreign_keys: self.foreign_keys.len(),
        }
    }

    /// Reads the live catalog of `tables` (in the current schema) into the
    /// contract's shape.
    pub async fn read_catalog(
        client: &impl GenericClient,
        migration: &str,
        tables: &[String],
    ) -> Result<Self, tokio_postgres::Error> {
        let column_rows = client
            .query(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                        pg_get_expr(d.adbin, d.adrelid) \
                 FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY($1) \
                   AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY c.relname, a.attnum",
                &[&tables],
            )
            .await?;
        let key_rows = client
            .query(
                "SELECT t.relname, con.conname, \
                        ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord) \
                              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord)::text[] \
                 FROM pg_constraint con \
                 JOIN pg_class t ON t.oid = con.conrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 WHERE con.contype = 'p' AND n.nspname = current_schema() AND t.relname = ANY($1)",
                &[&tables],
            )
            .await?;
        let mut found_tables: Vec<Table> = Vec::new();
        for name in tables {
            let columns: Vec<Column> = column_rows
                .iter()
                .filter(|r| r.get::<_, String>(0) == *name)
                .map(|r| Column {
                    name: r.get(1),
                    data_type: r.get(2),
                    nullable: r.get(3),
                    default: r.get(4),
                })
                .collect();
            if columns.is_empty() {
                continue;
            }
            let key = key_rows.iter().find(|r| r.get::<_, String>(0) == *name);
            found_tables.push(Table {
                name: name.clone(),
                columns,
                primary_key: key.map(|r| r.get(2)).unwrap_or_default(),
                primary_key_name: key.map(|r| r.get(1)),
            });
        }
        let indexes = client
            .query(
                "SELECT i.relname, t.relname, ix.indisunique, \
                        ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(num, ord) \
                              JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.num ORDER BY k.ord)::text[], \
                        am.amname, ix.indpred IS NOT NULL, ix.indexprs IS NOT NULL \
                 FROM pg_index ix \
                 JOIN pg_class i ON i.oid = ix.indexrelid \
                 JOIN pg_class t ON t.oid = ix.indrelid \
                 JOIN pg_am am ON am.oid = i.relam \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 WHERE NOT ix.indisprimary AND n.nspname = current_schema() AND t.relname = ANY($1) \
                 ORDER BY t.relname, i.relname",
                &[&tables],
            )
            .await?
            .iter()
            .map(|r| {
                let method: String = r.get(4);
                let partial: bool = r.get(5);
                let expressions: bool = r.get(6);
                let irregular = (method != "btree" || partial || expressions)
                    .then(|| format!("using {method}{}{}", if partial { ", partial" } else { "" }, if expressions { ", on expressions" } else { "" }));
                Index {
                    name: r.get(0),
                    table: r.get(1),
                    unique: r.get(2),
                    columns: r.get(3),
                    irregular,
                }
            })
            .collect();
        let foreign_keys = client
            .query(
                "SELECT con.conname, t.relname, rt.relname, \
                        ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord) \
                              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord)::text[], \
                        ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord) \
                              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)::text[], \
                        con.confdeltype::text, con.confupdtype::text \
                 FROM pg_constraint con \
                 JOIN pg_class t ON t.oid = con.conrelid \
                 JOIN pg_class rt ON rt.oid = con.confrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 WHERE con.contype = 'f' AND n.nspname = current_schema() AND t.relname = ANY($1) \
                 ORDER BY t.relname, con.conname",
                &[&tables],
            )
            .await?
            .iter()
            .map(|r| ForeignKey {
                name: r.get(0),
                table: r.get(1),
                references_table: r.get(2),
                columns: r.get(3),
                references_columns: r.get(4),
                on_delete: referential_action(r.get(5)),
                on_update: referential_action(r.get(6)),
            })
            .collect();
        Ok(Self {
            migration: migration.to_owned(),
            tables: found_tables,
            indexes,
            foreign_keys,
        })
    }

    /// Every way `found` differs from this contract. Column order is not
    /// compared (Prisma does not either); everything else is.
    pub fn diff(&self, found: &Contract) -> Vec<Difference> {
        let mut out = Vec::new();
        for table in &self.tables {
            let Some(actual) = found.tables.iter().find(|t| t.name == table.name) else {
                out.push(Difference {
                    object: format!("table {}", table.name),
                    expected: "present".into(),
                    found: "missing".into(),
                });
                continue;
            };
            let pkey = format!("{}_pkey", table.name);
            let actual_pkey = actual
                .primary_key_name
                .clone()
                .unwrap_or_else(|| pkey.clone());
            if table.primary_key != actual.primary_key || actual_pkey != pkey {
                out.push(Difference {
                    object: format!("primary key of {}", table.name),
                    expected: format!("{pkey} ({})", table.primary_key.join(", ")),
                    found: if actual.primary_key.is_empty() {
                        "none".into()
                    } else {
                        format!("{actual_pkey} ({})", actual.primary_key.join(", "))
                    },
                });
            }
            diff_named(
                &mut out,
                &format!("column {}.", table.name),
                &table.columns,
                &actual.columns,
                |c| &c.name,
                describe_column,
            );
        }
        diff_named(
            &mut out,
            "index ",
            &self.indexes,
            &found.indexes,
            |i| &i.name,
            describe_index,
        );
        diff_named(
            &mut out,
            "foreign key ",
            &self.foreign_keys,
            &found.foreign_keys,
            |k| &k.name,
            describe_key,
        );
        out
    }
}

/// Every difference between the `expected` and `found` objects of one
/// kind, matched by name: missing, different (described both ways), or
/// absent from the contract.
fn diff_named<T: PartialEq>(
    out: &mut Vec<Difference>,
    kind: &str,
    expected: &[T],
    found: &[T],
    name: impl Fn(&T) -> &String,
    describe: impl Fn(&T) -> String,
) {
    for wanted in expected {
        let object = format!("{kind}{}", name(wanted));
        match found.iter().find(|f| name(f) == name(wanted)) {
            None => out.push(Difference {
                object,
                expected: describe(wanted),
                found: "missing".into(),
            }),
            Some(actual) if actual != wanted => out.push(Difference {
                object,
                expected: describe(wanted),
                found: describe(actual),
            }),
            Some(_) => {}
        }
    }
    for extra in found
        .iter()
        .filter(|f| !expected.iter().any(|e| name(e) == name(f)))
    {
        out.push(Difference {
            object: format!("{kind}{}", name(extra)),
            expected: "absent".into(),
            found: describe(extra),
        });
    }
}

fn referential_action(code: String) -> String {
    match code.as_str() {
        "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "UNKNOWN",
    }
    .to_owned()
}

fn describe_column(c: &Column) -> String {
    format!(
        "{}{}{}",
        c.data_type,
        if c.nullable { " NULL" } else { " NOT NULL" },
        c.default
            .as_deref()
            .map(|d| format!(" DEFAULT {d}"))
            .unwrap_or_default()
    )
}

fn describe_index(i: &Index) -> String {
    format!(
        "{}INDEX ON {}({}){}",
        if i.unique { "UNIQUE " } else { "" },
        i.table,
        i.columns.join(", "),
        i.irregular
            .as_deref()
            .map(|x| format!(" {x}"))
            .unwrap_or_default()
    )
}

fn describe_key(k: &ForeignKey) -> String {
    format!(
        "{}({}) REFERENCES {}({}) ON DELETE {} ON UPDATE {}",
        k.table,
        k.columns.join(", "),
        k.references_table,
        k.references_columns.join(", "),
        k.on_delete,
        k.on_update
    )
}

/// Verifies the live database against the compiled-in contract.
pub async fn verify(
    client: &impl GenericClient,
) -> Result<(Figures, Vec<Difference>), tokio_postgres::Error> {
    let contract = Contract::embedded();
    let found =
        Contract::read_catalog(client, &contract.migration, &contract.table_names()).await?;
    Ok((found.figures(), contract.diff(&found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_has_the_documented_size() {
        assert_eq!(
            Contract::embedded().figures(),
            Figures {
                tables: 17,
                columns: 225,
                primary_keys: 17,
                unique_indexes: 13,
                regular_indexes: 48,
                foreign_keys: 2,
            }
        );
    }

    #[test]
    fn index_names_follow_the_prisma_convention() {
        for index in Contract::embedded().indexes {
            let suffix = if index.unique { "key" } else { "idx" };
            assert_eq!(
                index.name,
                format!("{}_{}_{suffix}", index.table, index.columns.join("_"))
            );
        }
    }

    #[test]
    fn identical_schemas_have_no_differences() {
        let contract = Contract::embedded();
        assert!(contract.diff(&contract.clone()).is_empty());
    }

    #[test]
    fn a_changed_default_is_a_difference_naming_the_column() {
        let contract = Contract::embedded();
        let mut found = contract.clone();
        found.tables[0].columns[9].default = None;
        let differences = contract.diff(&found);
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].object, "column analytics_events.timestamp");
    }
}
