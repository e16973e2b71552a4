<?php
// Managed by congvu-mail (Ansible): local changes are overwritten.
/**
 * congvu_twofactor: the webmail's second factor (docs/two-factor.md).
 *
 * After the password, an enrolled account must type a one-time code (RFC 6238,
 * from an authenticator app) or one of its recovery codes before anything
 * else; an account whose role requires the second factor (regulation_twofactor)
 * and has not enrolled is kept on the enrolment page. On every request while
 * the gate stands, every task but the gate's own page (and logout) is sent
 * there, the way congvu_mustchange does: the code comes before its password
 * page, the enrolment after it.
 * The settings page "Xác thực hai yếu tố / Two-factor login" enrols, and makes,
 * lists and revokes app passwords for mail clients.
 *
 * The secrets stay on the server: the password service (role mailpassword)
 * keeps them sealed, draws the QR code, checks every code and logs a wrong
 * one with the browser's address (fail2ban counts it as a failed login).
 */
class congvu_twofactor extends rcube_plugin
{
    public $task = '.*';

    private static $gates = [
        'code' => ['plugin.twofactor-code', 'plugin.twofactor-verify'],
        'enrol' => ['plugin.twofactor-enrol', 'plugin.twofactor-enrol-confirm'],
    ];

    public function init()
    {
        $this->add_texts('localization/');
        $this->add_hook('login_after', [$this, 'login_after']);
        $this->add_hook('startup', [$this, 'startup']);
        $this->add_hook('settings_actions', [$this, 'settings_actions']);
        foreach (['twofactor', 'twofactor-code', 'twofactor-verify', 'twofactor-enrol', 'twofactor-enrol-confirm',
                  'twofactor-apppassword-create', 'twofactor-apppassword-revoke'] as $action) {
            $this->register_action('plugin.' . $action, [$this, 'action_' . str_replace('-', '_', $action)]);
        }
    }

    // --- The gate ------------------------------------------------------------------

    public function login_after($args)
    {
        $status = $this->ask(['action' => 'twofactor-status']);
        if (!empty($status['ok']) && !empty($status['enrolled'])) {
            $gate = 'code';
        } elseif (!empty($status['ok']) && ($status['policy'] ?? '') === 'required') {
            $gate = 'enrol';
        } elseif (!empty($status['ok'])) {
            $gate = null;
        } else {
            $gate = 'code';  // the service does not answer: the gate stays closed
        }
        $_SESSION['congvu_twofactor_gate'] = $gate;
        // A password to change first (congvu_mustchange, which ran before):
        // the enrolment waits for it; the code never does.
        if ($gate === 'code' || ($gate === 'enrol' && empty($_SESSION['congvu_must_change']))) {
            $args['_task'] = 'settings';
            $args['_action'] = self::$gates[$gate][0];
        }
        return $args;
    }

    public function startup($args)
    {
        $gate = $_SESSION['congvu_twofactor_gate'] ?? null;
        if (empty($_SESSION['user_id']) || $gate === null) {
            return $args;
        }
        $allowed = self::$gates[$gate];
        if ($gate === 'enrol' && !empty($_SESSION['congvu_must_change'])) {
            // congvu_mustchange keeps the account on the password page first.
            $allowed = array_merge($allowed, ['plugin.password', 'plugin.password-save']);
        }
        if ($args['task'] === 'logout' || $args['task'] === 'login'
            || ($args['task'] === 'settings' && in_array($args['action'], $allowed, true))) {
            return $args;
        }
        rcmail::get_instance()->output->redirect(['_task' => 'settings', '_action' => self::$gates[$gate][0]]);
        return $args;
    }

    private function open_gate()
    {
        $_SESSION['congvu_twofactor_gate'] = null;
        rcmail::get_instance()->output->redirect(['_task' => 'mail']);
    }

    public function action_twofactor_code()
    {
        $this->page('codetitle', [$this, 'code_form']);
    }

    public function action_twofactor_verify()
    {
        if (($_SESSION['congvu_twofactor_gate'] ?? null) !== 'code') {
            rcmail::get_instance()->output->redirect(['_task' => 'mail']);
        }
        $reply = $this->ask(['action' => 'twofactor-verify', 'code' => $this->input('_code')]);
        if (!empty($reply['ok'])) {
            if (!empty($reply['recovery'])) {
                rcmail::get_instance()->output->show_message($this->gettext('recoveryused'), 'warning', null, true);
            }
            $this->open_gate();
        }
        rcmail::get_instance()->output->show_message($this->gettext('wrongcode'), 'error');
        $this->page('codetitle', [$this, 'code_form']);
    }

    public function code_form()
    {
        return html::div(['id' => 'congvu-twofactor', 'class' => 'formcontent'],
            html::p(null, rcube::Q($this->gettext('codeprompt')))
            . $this->form('plugin.twofactor-verify',
                $this->field('_code', 'congvu-twofactor-code', $this->gettext('code'), 'one-time-code')
                . $this->submit('congvu-twofactor-submit', $this->gettext('verify'))));
    }

    // --- Enrolment -----------------------------------------------------------------

    public function action_twofactor_enrol()
    {
        $renew = rcube_utils::get_input_string('_renew', rcube_utils::INPUT_GET) === '1';
        $this->enrolment = $this->ask(['action' => 'twofactor-enrol-start', 'renew' => $renew]);
        $this->page('enroltitle', [$this, 'enrol_form']);
    }

    public function enrol_form()
    {
        $e = $this->enrolment;
        if (empty($e['ok'])) {
            return html::div(['id' => 'congvu-twofactor', 'class' => 'formcontent'],
                html::p(['class' => 'error'], rcube::Q($this->gettext('unavailable'))));
        }
        $qr = html::img(['id' => 'congvu-twofactor-qr', 'alt' => $this->gettext('qr'), 'width' => 240,
            'src' => 'data:image/svg+xml;base64,' . base64_encode($e['qr_svg'])]);
        return html::div(['id' => 'congvu-twofactor', 'class' => 'formcontent'],
            html::p(null, rcube::Q($this->gettext('enrolintro')))
            . html::div(['class' => 'congvu-twofactor-qr'], $qr)
            . html::p(null, rcube::Q($this->gettext('secrettext')) . ' '
                . html::tag('code', ['id' => 'congvu-twofactor-secret'], rcube::Q(trim(chunk_split($e['secret'], 4, ' ')))))
            . $this->form('plugin.twofactor-enrol-confirm',
                $this->field('_code', 'congvu-twofactor-code', $this->gettext('code'), 'one-time-code')
                . $this->submit('congvu-twofactor-submit', $this->gettext('confirm'))));
    }

    public function action_twofactor_enrol_confirm()
    {
        $reply = $this->ask(['action' => 'twofactor-enrol-confirm', 'code' => $this->input('_code')]);
        if (empty($reply['ok'])) {
            rcmail::get_instance()->output->show_message($this->gettext('wrongcode'), 'error');
            $this->action_twofactor_enrol();
            return;
        }
        // Enrolled: the gate (if any) opens once the codes have been shown.
        if (($_SESSION['congvu_twofactor_gate'] ?? null) === 'enrol') {
            $_SESSION['congvu_twofactor_gate'] = null;
        }
        $this->codes = $reply['recovery_codes'];
        $this->page('enrolled', [$this, 'recovery_list']);
    }

    public function recovery_list()
    {
        $items = '';
        foreach ($this->codes as $code) {
            $items .= html::tag('li', null, html::tag('code', null, rcube::Q($code)));
        }
        return html::div(['id' => 'congvu-twofactor', 'class' => 'formcontent'],
            html::p(null, rcube::Q($this->gettext('recoveryintro')))
            . html::tag('ul', ['id' => 'congvu-twofactor-recovery'], $items)
            . html::p(null, html::a(['href' => './?_task=mail', 'id' => 'congvu-twofactor-continue',
                'class' => 'button mainaction'], rcube::Q($this->gettext('continue')))));
    }

    // --- Settings: status and app passwords ---------------------------------------

    public function settings_actions($args)
    {
        $args['actions'][] = ['action' => 'plugin.twofactor', 'class' => 'twofactor', 'domain' => 'congvu_twofactor',
            'label' => 'menu', 'title' => 'menu'];
        return $args;
    }

    public function action_twofactor()
    {
        $this->page('menu', [$this, 'settings_page']);
    }

    public function action_twofactor_apppassword_create()
    {
        $reply = $this->ask(['action' => 'app-password-create', 'name' => $this->input('_name')]);
        if (!empty($reply['ok'])) {
            $this->created = $reply['password'];
        } else {
            rcmail::get_instance()->output->show_message($this->gettext('namewrong'), 'error');
        }
        $this->page('menu', [$this, 'settings_page']);
    }

    public function action_twofactor_apppassword_revoke()
    {
        $reply = $this->ask(['action' => 'app-password-revoke', 'id' => $this->input('_id')]);
        rcmail::get_instance()->output->show_message($this->gettext(!empty($reply['ok']) ? 'revoked' : 'unavailable'),
            !empty($reply['ok']) ? 'confirmation' : 'error');
        $this->page('menu', [$this, 'settings_page']);
    }

    public function settings_page()
    {
        $status = $this->ask(['action' => 'twofactor-status']);
        $out = '';
        if (empty($status['ok'])) {
            $out .= html::p(['class' => 'error'], rcube::Q($this->gettext('unavailable')));
        } elseif (!empty($status['enrolled'])) {
            $out .= html::p(['id' => 'congvu-twofactor-status'], rcube::Q($this->gettext('statuson')));
        } elseif ($status['policy'] === 'off') {
            $out .= html::p(['id' => 'congvu-twofactor-status'], rcube::Q($this->gettext('statusoff')));
        } else {
            $out .= html::p(['id' => 'congvu-twofactor-status'], rcube::Q($this->gettext('statusnone')) . ' '
                . html::a(['href' => './?_task=settings&_action=plugin.twofactor-enrol', 'id' => 'congvu-twofactor-enrol',
                    'class' => 'button', 'target' => '_top'], rcube::Q($this->gettext('enrol'))));
        }
        $out .= html::tag('h2', null, rcube::Q($this->gettext('apppasswords')))
            . html::p(null, rcube::Q($this->gettext('apppasswordsintro')));
        if (!empty($this->created)) {
            $out .= html::div(['class' => 'congvu-twofactor-created'],
                html::p(null, rcube::Q($this->gettext('createdonce')))
                . html::p(null, html::tag('code', ['id' => 'congvu-apppassword-new'], rcube::Q($this->created))));
        }
        $list = $this->ask(['action' => 'app-password-list']);
        $table = new html_table(['id' => 'congvu-apppasswords', 'class' => 'records-table', 'cols' => 4]);
        foreach (['device', 'created', 'lastused', ''] as $head) {
            $table->add_header(null, $head === '' ? '' : rcube::Q($this->gettext($head)));
        }
        foreach ($list['app_passwords'] ?? [] as $app) {
            $table->add_row(['data-id' => $app['id']]);
            $table->add('name', rcube::Q($app['name']));
            $table->add('created', rcube::Q(str_replace('T', ' ', $app['created_at'])));
            $table->add('lastused', rcube::Q($app['last_used_at'] ? str_replace('T', ' ', $app['last_used_at'])
                : $this->gettext('never')));
            $table->add('revoke', $this->form('plugin.twofactor-apppassword-revoke',
                html::tag('input', ['type' => 'hidden', 'name' => '_id', 'value' => $app['id']])
                . $this->submit('congvu-apppassword-revoke-' . $app['id'], $this->gettext('revoke'))));
        }
        $out .= $table->show();
        $out .= $this->form('plugin.twofactor-apppassword-create',
            $this->field('_name', 'congvu-apppassword-name', $this->gettext('device'), 'off')
            . $this->submit('congvu-apppassword-create', $this->gettext('create')));
        return html::div(['id' => 'congvu-twofactor', 'class' => 'formcontent'], $out);
    }

    // --- Helpers -------------------------------------------------------------------

    private $enrolment = null;
    private $codes = [];
    private $created = null;

    private function page($title, $handler)
    {
        $rcmail = rcmail::get_instance();
        $this->register_handler('plugin.body', $handler);
        $rcmail->output->set_pagetitle($this->gettext($title));
        $rcmail->output->send('plugin');
    }

    private function input($name)
    {
        return (string) rcube_utils::get_input_string($name, rcube_utils::INPUT_POST);
    }

    private function form($action, $content)
    {
        $rcmail = rcmail::get_instance();
        return html::tag('form', ['method' => 'post', 'action' => './?_task=settings&_action=' . $action],
            html::tag('input', ['type' => 'hidden', 'name' => '_token', 'value' => $rcmail->get_request_token()])
            . $content);
    }

    private function field($name, $id, $label, $autocomplete)
    {
        return html::div(['class' => 'form-group row'],
            html::label(['for' => $id, 'class' => 'col-form-label col-sm-4'], rcube::Q($label))
            . html::div(['class' => 'col-sm-8'], html::tag('input', ['type' => 'text', 'name' => $name, 'id' => $id,
                'class' => 'form-control', 'autocomplete' => $autocomplete, 'required' => 'required', 'size' => 32])));
    }

    private function submit($id, $label)
    {
        return html::tag('button', ['type' => 'submit', 'id' => $id, 'class' => 'button mainaction'], rcube::Q($label));
    }

    // One JSON line to the password service, one back (the user is the session's).
    private function ask($request)
    {
        $rcmail = rcmail::get_instance();
        $socket = $rcmail->config->get('congvu_password_socket', '/run/congvu-mailpassword.sock');
        $conn = @stream_socket_client('unix://' . $socket, $errno, $errstr, 5);
        if (!$conn) {
            rcube::raise_error(['code' => 600, 'file' => __FILE__, 'line' => __LINE__,
                'message' => "Two-factor service: cannot connect to $socket: $errstr"], true, false);
            return null;
        }
        stream_set_timeout($conn, 10);
        $request['user'] = $rcmail->get_user_name();
        $request['client'] = rcube_utils::remote_addr();
        fwrite($conn, json_encode($request) . "\n");
        $reply = json_decode((string) fgets($conn), true);
        fclose($conn);
        return is_array($reply) ? $reply : null;
    }
}
