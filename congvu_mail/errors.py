"""The one error the rules raise."""


class RuleError(ValueError):
    """A rule cannot do what it is asked (bad input, a missing library...).

    The message names the function and the rule, never a password. The filter
    plugins turn it into Ansible's AnsibleFilterError (congvu_mail.filters)."""
