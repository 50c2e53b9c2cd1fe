-- 008_panel_role: the panel's database role (vmail_panel) may only execute the self-service
-- functions.  Those are SECURITY DEFINER, but a deferred constraint trigger fires at commit,
-- after the function has returned, with the caller's rights: alias_has_targets then could not
-- read vmail.alias and every alias added from the panel failed with "permission denied".
-- It only reads and raises, so running it as its owner widens nothing.
ALTER FUNCTION vmail.alias_has_targets() SECURITY DEFINER SET search_path = vmail, pg_temp;
