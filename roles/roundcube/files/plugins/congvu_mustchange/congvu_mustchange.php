<?php
// Managed by congvu-mail (Ansible): local changes are overwritten.
/**
 * congvu_mustchange: an account marked "must change the password at the next
 * login" (mailboxes.must_change; Điều 6, 7 of the 2025 text), or whose
 * password is older than the regulation allows (Điều 4.2), can use the
 * webmail only to change its password. After login, and on every request
 * while the mark stands, every task except the password plugin's own actions
 * (and logout) is sent to the password page. The password service (role
 * mailpassword) says whether either holds; a change clears both. (Dovecot
 * lets such an account in on the webmail's own IMAP port only.)
 */
class congvu_mustchange extends rcube_plugin
{
    public $task = '.*';

    private static $allowed = [
        'settings' => ['plugin.password', 'plugin.password-save'],
        'logout' => null,
        'login' => null,
    ];

    public function init()
    {
        $this->add_hook('login_after', [$this, 'login_after']);
        $this->add_hook('startup', [$this, 'startup']);
    }

    public function login_after($args)
    {
        $rcmail = rcmail::get_instance();
        $_SESSION['congvu_must_change'] = $this->must_change($rcmail->get_user_name());
        if ($_SESSION['congvu_must_change']) {
            $args['_task'] = 'settings';
            $args['_action'] = 'plugin.password';
        }
        return $args;
    }

    public function startup($args)
    {
        // The second factor's code (congvu_twofactor) comes first: no password
        // page for whoever has only the password. Its enrolment comes after.
        if (empty($_SESSION['user_id']) || empty($_SESSION['congvu_must_change'])
            || ($_SESSION['congvu_twofactor_gate'] ?? null) === 'code') {
            return $args;
        }
        $rcmail = rcmail::get_instance();
        $task = $args['task'];
        if (array_key_exists($task, self::$allowed)
            && (self::$allowed[$task] === null || in_array($args['action'], self::$allowed[$task], true))) {
            return $args;
        }
        // Still marked? (a password changed a moment ago clears it)
        $_SESSION['congvu_must_change'] = $this->must_change($rcmail->get_user_name());
        if ($_SESSION['congvu_must_change']) {
            $rcmail->output->redirect(['_task' => 'settings', '_action' => 'plugin.password']);
        }
        return $args;
    }

    // True unless the service says the account need not change its password:
    // when the service cannot answer, the gate stays closed.
    private function must_change($user)
    {
        $socket = rcmail::get_instance()->config->get('congvu_password_socket', '/run/congvu-mailpassword.sock');
        $conn = @stream_socket_client('unix://' . $socket, $errno, $errstr, 5);
        if (!$conn) {
            return true;
        }
        stream_set_timeout($conn, 10);
        fwrite($conn, json_encode(['action' => 'status', 'user' => $user]) . "\n");
        $reply = json_decode((string) fgets($conn), true);
        fclose($conn);
        return !(is_array($reply) && !empty($reply['ok']) && empty($reply['must_change']));
    }
}
