//! One way to run the store's SQL on either database.
//!
//! Statements are written once, with `?1`, `?2` … placeholders (PostgreSQL
//! gets `$1`, `$2` …); values and rows are plain [`Value`]s. Where the two
//! dialects differ (full-text search, address indexes) the caller asks
//! [`Sql::dialect`]. Both drivers keep prepared statements: rusqlite in its
//! statement cache, postgres per connection in [`PgConn`].

use super::Error;
use std::borrow::Cow;
use std::collections::HashMap;

/// Which database a statement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v.min(i64::MAX as u64) as i64)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v.min(i64::MAX as usize) as i64)
    }
}

impl From<u16> for Value {
    fn from(v: u16) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

macro_rules! id_value {
    ($($name:ident),*) => {$(
        impl From<crate::model::$name> for Value {
            fn from(v: crate::model::$name) -> Value {
                Value::Int(v.0)
            }
        }
    )*};
}

id_value!(RawId, ReportId, CaseId, OutboxId);

/// Parameters, each turned into a [`Value`].
#[macro_export]
macro_rules! sql_params {
    ($($v:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($v)),*][..]
    };
}

/// A result row, read by column index.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, Error> {
        self.0.get(i).ok_or_else(|| Error::Column {
            index: i,
            detail: "no such column".into(),
        })
    }

    fn wrong(i: usize, want: &str, got: &Value) -> Error {
        Error::Column {
            index: i,
            detail: format!("expected {want}, found {got:?}"),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, Error> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            Value::Bool(b) => Ok(Some(i64::from(*b))),
            other => Err(Self::wrong(i, "an integer", other)),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, Error> {
        self.opt_int(i)?
            .ok_or_else(|| Self::wrong(i, "an integer", &Value::Null))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, Error> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            other => Err(Self::wrong(i, "text", other)),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, Error> {
        self.opt_text(i)?
            .ok_or_else(|| Self::wrong(i, "text", &Value::Null))
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, Error> {
        match self.at(i)? {
            Value::Blob(v) => Ok(v.clone()),
            Value::Null => Ok(Vec::new()),
            other => Err(Self::wrong(i, "bytes", other)),
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool, Error> {
        match self.at(i)? {
            Value::Bool(b) => Ok(*b),
            Value::Int(v) => Ok(*v != 0),
            other => Err(Self::wrong(i, "a boolean", other)),
        }
    }
}

/// Somewhere SQL runs: a connection, or a transaction on one.
pub trait Sql {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; the number of rows it changed.
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error>;

    /// Runs a query; its rows.
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error>;

    /// Runs an `INSERT` of one row into a table keyed by `id`; the new id.
    /// (SQLite reads it from the connection: its `RETURNING` builds a
    /// temporary table per statement.)
    fn insert(&mut self, sql: &str, params: &[Value]) -> Result<i64, Error> {
        let returning = format!("{sql} RETURNING id");
        match self.row(&returning, params)? {
            Some(row) => row.int(0),
            None => Err(Error::Column {
                index: 0,
                detail: format!("no id came back from: {sql}"),
            }),
        }
    }

    /// The first row of a query, if any.
    fn row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, Error> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// The integer in the first column of the first row (a count).
    fn count(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        match self.row(sql, params)? {
            Some(row) => Ok(row.opt_int(0)?.unwrap_or(0).max(0) as u64),
            None => Ok(0),
        }
    }
}

/// SQLite: a connection or a transaction (which derefs to one).
pub struct Lite<'a>(pub &'a rusqlite::Connection);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
        }))
    }
}

impl Sql for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn insert(&mut self, sql: &str, params: &[Value]) -> Result<i64, Error> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.insert(rusqlite::params_from_iter(params))?)
    }

    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(v) => Value::Int(v),
                    rusqlite::types::ValueRef::Real(v) => Value::Int(v as i64),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

/// `?N` placeholders as PostgreSQL's `$N`.
pub fn dollar_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string => out.push('$'),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                // SQLite keeps booleans as integers (a copied store).
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(s) => match *ty {
                Type::INET => s.parse::<std::net::IpAddr>()?.to_sql(ty, out),
                _ => pg_text(s).as_ref().to_sql(ty, out),
            },
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// PostgreSQL text cannot hold NUL, which a hostile message can put in a
/// subject or a log line: it is stored as U+2400 (the symbol for it).
pub fn pg_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{2400}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn pg_value(row: &postgres::Row, i: usize) -> Result<Value, Error> {
    use postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Value::Null, |v| Value::Int(i64::from(v))),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map_or(Value::Null, |v| Value::Int(i64::from(v))),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, Value::Bool),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Value::Null, Value::Blob),
        Type::INET => row
            .try_get::<_, Option<std::net::IpAddr>>(i)?
            .map_or(Value::Null, |ip| Value::Text(ip.to_string())),
        _ => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::Text),
    })
}

fn pg_rows(rows: Vec<postgres::Row>) -> Result<Vec<Row>, Error> {
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| pg_value(row, i))
                .collect::<Result<_, _>>()
                .map(Row)
        })
        .collect()
}

fn pg_params(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// A PostgreSQL connection with its prepared statements.
pub struct PgConn {
    /// Always `Some` but while being dropped.
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

impl Drop for PgConn {
    /// The blocking client closes its connection by running its own
    /// runtime, which it cannot do on a thread of ours that runs one (the
    /// reply sender's task, when the daemon stops): there it is closed on
    /// a thread of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("pg-close".into())
                    .spawn(move || drop(client));
            }
        }
    }
}

impl PgConn {
    pub fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client: Some(client),
            statements: HashMap::new(),
        }
    }

    /// Whether the server closed the connection (or it broke, or it was
    /// discarded): every statement on it would fail.
    pub fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(postgres::Client::is_closed)
    }

    /// Gives up the connection (it is known to be broken): the next use
    /// opens a new one. Its prepared statements go with it.
    pub fn discard(&mut self) {
        // Dropped as `Drop` drops it: off a runtime thread when on one.
        drop(std::mem::replace(
            self,
            PgConn {
                client: None,
                statements: HashMap::new(),
            },
        ));
    }

    /// The client.
    pub fn client(&mut self) -> &mut postgres::Client {
        self.client
            .as_mut()
            .expect("the client is there until drop")
    }

    /// `sql` prepared on this connection, once (`?N` placeholders).
    pub fn statement(&mut self, sql: &str) -> Result<postgres::Statement, Error> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client().prepare(&dollar_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    /// A transaction; its statements are prepared on this connection.
    pub fn transaction(&mut self) -> Result<PgTx<'_>, Error> {
        let tx = self
            .client
            .as_mut()
            .expect("the client is there until drop")
            .transaction()?;
        Ok(PgTx {
            tx,
            statements: &mut self.statements,
        })
    }
}

impl Sql for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let stmt = self.statement(sql)?;
        Ok(self.client().execute(&stmt, &pg_params(params))?)
    }

    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let stmt = self.statement(sql)?;
        pg_rows(self.client().query(&stmt, &pg_params(params))?)
    }
}

/// A PostgreSQL transaction.
pub struct PgTx<'a> {
    pub tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, postgres::Statement>,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, Error> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.tx.prepare(&dollar_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    pub fn commit(self) -> Result<(), Error> {
        Ok(self.tx.commit()?)
    }
}

impl Sql for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let stmt = self.statement(sql)?;
        Ok(self.tx.execute(&stmt, &pg_params(params))?)
    }

    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let stmt = self.statement(sql)?;
        pg_rows(self.tx.query(&stmt, &pg_params(params))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_strings() {
        assert_eq!(
            dollar_placeholders("SELECT '?' || ?1 WHERE a = ?12"),
            "SELECT '?' || $1 WHERE a = $12"
        );
    }

    #[test]
    fn rows_read_what_sqlite_stores() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut q = Lite(&conn);
        q.exec("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)", &[])
            .unwrap();
        q.exec(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            crate::sql_params![7i64, "x", Some(&b"yz"[..])],
        )
        .unwrap();
        let row = q.row("SELECT a, b, c, NULL FROM t", &[]).unwrap().unwrap();
        assert_eq!(row.int(0).unwrap(), 7);
        assert_eq!(row.text(1).unwrap(), "x");
        assert_eq!(row.blob(2).unwrap(), b"yz");
        assert_eq!(row.opt_text(3).unwrap(), None);
        assert!(row.text(0).is_err());
    }
}
