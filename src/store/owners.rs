//! Customers and their assignments: read whole (the lookup index is built
//! from them), and an import's plan carried out in one transaction.

use super::sql::{Row, Sql, Value};
use super::{Db, Error};
use crate::model::reply::Language;
use crate::owners::import::{Customer, ImportPlan, Stored};
use crate::owners::{Assignment, Index, Netblock, Target};
use crate::sql_params;
use chrono::{DateTime, Utc};

/// Rows of an import written by one statement on PostgreSQL, at most (7
/// values each: well under its limit on bound values). SQLite writes one
/// row a statement: it has no round trips to save, and reusing one cached
/// statement is faster there than compiling long ones (1.0 s against
/// 1.3 s for 100,000 rows).
const ROWS_PER_STATEMENT: usize = 500;

fn rows_per_statement(q: &dyn Sql) -> usize {
    match q.dialect() {
        super::sql::Dialect::Sqlite => 1,
        super::sql::Dialect::Postgres => ROWS_PER_STATEMENT,
    }
}

/// Runs `head (?1, …), (…), … tail` for `rows`, as many a statement as
/// [`rows_per_statement`] says; every row has the same number of values.
fn batched(
    q: &mut dyn Sql,
    head: &str,
    tail: &str,
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), Error> {
    let rows: Vec<Vec<Value>> = rows.collect();
    for chunk in rows.chunks(rows_per_statement(q)) {
        let mut groups = Vec::with_capacity(chunk.len());
        let mut values = Vec::new();
        for row in chunk {
            let first = values.len() + 1;
            let marks: Vec<String> = (first..first + row.len())
                .map(|i| format!("?{i}"))
                .collect();
            groups.push(format!("({})", marks.join(", ")));
            values.extend(row.iter().cloned());
        }
        q.exec(&format!("{head}{}{tail}", groups.join(", ")), &values)?;
    }
    Ok(())
}
const UPDATE_CUSTOMER: &str =
    "UPDATE customers SET name = ?2, emails = ?3, language = ?4, policy = ?5, enabled = ?6,
         updated_at = ?7
     WHERE reference = ?1";

const ASSIGNMENTS: &str =
    "SELECT a.id, c.reference, a.netblock, a.domain, a.valid_from, a.valid_until, a.source
     FROM assignments a JOIN customers c ON c.id = a.customer_id
     ORDER BY a.id";

fn owners_version(q: &mut dyn Sql) -> Result<i64, Error> {
    Ok(
        q.row("SELECT coalesce(max(id), 0) FROM owner_imports", &[])?
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0),
    )
}

fn time(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

impl Db {
    /// Every customer and every assignment (ended ones too), in the order
    /// they were stored.
    ///
    /// # Errors
    /// Storage errors; a row this build cannot read names itself.
    pub fn owners(&self) -> Result<(Vec<Customer>, Vec<Stored>), Error> {
        self.read(|q| {
            let customers = q
                .rows(
                    "SELECT id, reference, name, emails, language, policy, enabled
                     FROM customers ORDER BY id",
                    &[],
                )?
                .iter()
                .map(read_customer)
                .collect::<Result<Vec<Customer>, Error>>()?;
            let stored = q
                .rows(ASSIGNMENTS, &[])?
                .iter()
                .map(read_assignment)
                .collect::<Result<Vec<_>, Error>>()?;
            Ok((customers, stored))
        })
    }

    /// The version of the owners: it changes with every import that
    /// changed something (0 before the first).
    ///
    /// # Errors
    /// Storage errors.
    pub fn owners_version(&self) -> Result<i64, Error> {
        self.read(|q| owners_version(q))
    }

    /// The routing index of the assignments as of the version returned
    /// with it.
    ///
    /// # Errors
    /// Storage errors; a row this build cannot read names itself.
    pub fn owners_index(&self) -> Result<(i64, Index), Error> {
        let (version, assignments) = self.read(|q| {
            let version = owners_version(q)?;
            let assignments = q
                .rows(ASSIGNMENTS, &[])?
                .iter()
                .map(|r| read_assignment(r).map(|s| s.assignment))
                .collect::<Result<Vec<_>, Error>>()?;
            Ok((version, assignments))
        })?;
        Ok((version, Index::new(assignments)))
    }

    /// Carries out an import of `source` at `now`, in one transaction.
    ///
    /// # Errors
    /// Storage errors; then nothing of the import was written.
    pub fn apply_owners_import(
        &mut self,
        plan: &ImportPlan,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let stamp = time(Some(now));
        self.write(|q| {
            let customer_values = |c: &Customer| -> Vec<Value> {
                sql_params![
                    &c.reference,
                    &c.name,
                    super::json_list(&c.emails),
                    c.language.as_str(),
                    c.policy.clone(),
                    c.enabled,
                    stamp.clone()
                ]
                .to_vec()
            };
            // New customers and assignments go in many rows a statement: an
            // import of 100,000 rows is a few hundred round trips, not
            // 100,000 (PostgreSQL).
            batched(
                q,
                "INSERT INTO customers (reference, name, emails, language, policy, enabled,
                     updated_at) VALUES ",
                "",
                plan.new_customers.iter().map(customer_values),
            )?;
            for c in &plan.changed_customers {
                q.exec(UPDATE_CUSTOMER, &customer_values(c))?;
            }
            let assignment_values = plan.new_assignments.iter().map(|a| {
                let (netblock, domain) = match &a.target {
                    Target::Netblock(block) => (Some(block.to_string()), None),
                    Target::Domain(domain) => (None, Some(domain.clone())),
                };
                sql_params![
                    &a.customer,
                    netblock,
                    domain,
                    time(a.valid_from),
                    time(a.valid_until),
                    source,
                    stamp.clone()
                ]
                .to_vec()
            });
            match q.dialect() {
                super::sql::Dialect::Sqlite => {
                    for values in assignment_values {
                        q.exec(
                            "INSERT INTO assignments (customer_id, netblock, domain, valid_from,
                                 valid_until, source, created_at)
                             SELECT id, ?2, ?3, ?4, ?5, ?6, ?7 FROM customers WHERE reference = ?1",
                            &values,
                        )?;
                    }
                }
                super::sql::Dialect::Postgres => batched(
                    q,
                    "INSERT INTO assignments (customer_id, netblock, domain, valid_from,
                         valid_until, source, created_at)
                     SELECT (SELECT id FROM customers WHERE reference = v.column1), v.column2,
                         v.column3, v.column4, v.column5, v.column6, v.column7
                     FROM (VALUES ",
                    ") AS v",
                    assignment_values,
                )?,
            }
            for (id, until) in &plan.updated {
                q.exec(
                    "UPDATE assignments SET valid_until = ?2 WHERE id = ?1",
                    sql_params![*id, time(*until)],
                )?;
            }
            for ids in plan.ended.chunks(rows_per_statement(q)) {
                let list: Vec<String> = (2..ids.len() + 2).map(|i| format!("?{i}")).collect();
                let mut values = vec![Value::from(stamp.clone())];
                values.extend(ids.iter().map(|id| Value::from(*id)));
                q.exec(
                    &format!(
                        "UPDATE assignments SET valid_until = ?1 WHERE id IN ({})",
                        list.join(", ")
                    ),
                    &values,
                )?;
            }
            // The log's new row is the new version of the owners: routing
            // rebuilds its index when it sees it.
            let counts = plan.counts();
            q.exec(
                "INSERT INTO owner_imports (source, imported_at, created, updated, ended)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                sql_params![
                    source,
                    stamp.clone(),
                    counts.assignments_created + counts.customers_created,
                    counts.assignments_updated + counts.customers_updated,
                    counts.assignments_ended
                ],
            )?;
            Ok(())
        })
    }
}

fn read_customer(r: &Row) -> Result<Customer, Error> {
    let id = r.int(0)?;
    Ok(Customer {
        reference: r.text(1)?,
        name: r.text(2)?,
        emails: super::parse_json_list("customers", id, &r.text(3)?)?,
        language: super::known("customers", id, &r.text(4)?, Language::parse)?,
        policy: r.opt_text(5)?,
        enabled: r.bool(6)?,
    })
}

fn read_assignment(r: &Row) -> Result<Stored, Error> {
    let id = r.int(0)?;
    let corrupt = |detail: String| Error::Corrupt {
        table: "assignments",
        id,
        detail,
    };
    let target = match (r.opt_text(2)?, r.opt_text(3)?) {
        (Some(net), None) => Target::Netblock(Netblock::parse(&net).map_err(corrupt)?),
        (None, Some(domain)) => Target::Domain(domain),
        _ => return Err(corrupt("neither a netblock nor a domain".into())),
    };
    let at = |i: usize| -> Result<Option<DateTime<Utc>>, Error> {
        r.opt_text(i)?
            .map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .map(|t| t.to_utc())
                    .map_err(|_| corrupt(format!("unreadable time {t:?}")))
            })
            .transpose()
    };
    Ok(Stored {
        id,
        assignment: Assignment {
            customer: r.text(1)?,
            target,
            valid_from: at(4)?,
            valid_until: at(5)?,
        },
        source: r.text(6)?,
    })
}
