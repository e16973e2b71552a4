"""The programs the hosts run, one module each, with a console script of the
same name (congvu-sendlimit, congvu-mailpassword, congvu-lifecycle,
congvu-report, congvu-check, congvu-directory-sync). They share
congvu_mail.config, congvu_mail.db and congvu_mail.mail."""
