-- 0013: the RFC 3461 parameters a client gave (RET, ENVID, and NOTIFY and
-- ORCPT per recipient), as JSON; NULL when it gave none.
ALTER TABLE raw_messages ADD COLUMN dsn TEXT;
