<?php
// Managed by congvu-mail (Ansible): local changes are overwritten.
/**
 * Password driver "congvu": asks the password service (role mailpassword)
 * over its Unix socket, and passes back the rules a refused password broke,
 * as the service words them, so the user sees what to fix. The policy itself
 * is the regulation's code (filter_plugins/mail_password.py), not here.
 */
class rcube_congvu_password
{
    public function save($curpass, $passwd, $username)
    {
        $socket = rcmail::get_instance()->config->get('congvu_password_socket', '/run/congvu-mailpassword.sock');
        $conn = @stream_socket_client('unix://' . $socket, $errno, $errstr, 5);
        if (!$conn) {
            rcube::raise_error(['code' => 600, 'file' => __FILE__, 'line' => __LINE__,
                'message' => "Password service: cannot connect to $socket: $errstr"], true, false);
            return PASSWORD_CONNECT_ERROR;
        }
        stream_set_timeout($conn, 30);
        fwrite($conn, json_encode(['action' => 'change', 'user' => $username,
            'current' => $curpass, 'new' => $passwd]) . "\n");
        $reply = json_decode((string) fgets($conn), true);
        fclose($conn);

        if (!is_array($reply)) {
            return PASSWORD_CONNECT_ERROR;
        }
        if (!empty($reply['ok'])) {
            return PASSWORD_SUCCESS;
        }
        $errors = isset($reply['errors']) && is_array($reply['errors']) ? $reply['errors'] : [];
        return [
            'code' => PASSWORD_CONSTRAINT_VIOLATION,
            'message' => 'The new password ' . implode('; ', $errors) . '.',
        ];
    }
}
