-- 0004: reports stored without one (copied from a SQLite store older than its migration 16) get the RSIT pair their type and subtype
-- mapped to then (classify::rsit::for_type, which a unit test holds this
-- to), so every report row carries its pair and a reader never decides one.
UPDATE reports SET
    rsit_taxonomy = CASE
        WHEN abuse_type = 'network_activity' AND subtype = 'brute_force' THEN 'intrusion-attempts'
        WHEN abuse_type = 'network_activity' AND subtype = 'intrusion' THEN 'intrusion-attempts'
        WHEN abuse_type = 'network_activity' AND subtype = 'dos' THEN 'availability'
        WHEN abuse_type = 'network_activity' AND subtype = 'port_scan' THEN 'information-gathering'
        WHEN abuse_type = 'email_abuse' THEN 'abusive-content'
        WHEN abuse_type = 'web_content' THEN 'abusive-content'
        WHEN abuse_type = 'copyright' THEN 'fraud'
        ELSE 'other' END,
    rsit_type = CASE
        WHEN abuse_type = 'network_activity' AND subtype = 'brute_force' THEN 'brute-force'
        WHEN abuse_type = 'network_activity' AND subtype = 'intrusion' THEN 'exploit'
        WHEN abuse_type = 'network_activity' AND subtype = 'dos' THEN 'ddos'
        WHEN abuse_type = 'network_activity' AND subtype = 'port_scan' THEN 'scanner'
        WHEN abuse_type = 'network_activity' THEN 'other'
        WHEN abuse_type = 'email_abuse' THEN 'spam'
        WHEN abuse_type = 'web_content' THEN 'harmful-speech'
        WHEN abuse_type = 'copyright' THEN 'copyright'
        ELSE 'undetermined' END
WHERE rsit_taxonomy IS NULL OR rsit_type IS NULL;
