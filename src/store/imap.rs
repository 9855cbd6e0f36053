//! Where `serve` stands in each `[[imap]]` mailbox: the folder's
//! UIDVALIDITY and the highest UID committed. `migrate-store` does not
//! carry it over: the new store starts each folder again, and dedup keeps
//! that harmless.

use super::{Db, Error};
use crate::sql_params;

impl Db {
    /// The UIDVALIDITY and last committed UID recorded for `mailbox`.
    ///
    /// # Errors
    /// The store fails.
    pub fn imap_progress(&self, mailbox: &str) -> Result<Option<(u32, u32)>, Error> {
        self.read(|q| {
            q.row(
                "SELECT uid_validity, last_uid FROM imap_progress WHERE mailbox = ?1",
                sql_params![mailbox],
            )?
            .map(|row| {
                let number = |i| row.int(i).map(|v| u32::try_from(v).unwrap_or(0));
                Ok((number(0)?, number(1)?))
            })
            .transpose()
        })
    }

    /// Records that `mailbox` is committed up to `last_uid` under `uid_validity`.
    ///
    /// # Errors
    /// The store fails.
    pub fn set_imap_progress(
        &mut self,
        mailbox: &str,
        uid_validity: u32,
        last_uid: u32,
    ) -> Result<(), Error> {
        let now = crate::now_rfc3339();
        self.write(|q| {
            q.exec(
                "INSERT INTO imap_progress (mailbox, uid_validity, last_uid, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity,
                     last_uid = excluded.last_uid, updated_at = excluded.updated_at",
                sql_params![mailbox, i64::from(uid_validity), i64::from(last_uid), now],
            )?;
            Ok(())
        })
    }
}
