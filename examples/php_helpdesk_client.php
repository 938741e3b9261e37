<?php
// A PHP helpdesk posting a GBK form to protofuse's php-helpdesk adapter (config/adapters/php-helpdesk.toml),
// the way an old PHP 5/7 system does it: http_build_query over GBK bytes, no curl extension needed.
// Usage: php examples/php_helpdesk_client.php [BASE_URL] [USER_ID]
// Prints protofuse's answer ({"code":0,...}) and exits 0 when the message was accepted.

$base = $argv[1] ?? 'http://127.0.0.1:8080';
$uid = $argv[2] ?? 'php-user-1';
// Every field goes out in the charset the Content-Type declares, the nickname as much as the message.
$text = iconv('UTF-8', 'GBK', '你好，我要退货，订单号 A-1001');
$nick = iconv('UTF-8', 'GBK', 'PHP 顾客');

$body = http_build_query([
    'uid' => $uid,
    'nick' => $nick,
    'msg' => $text,
    'ts' => time(),
    'role' => 1,
    'mid' => 'php-' . getmypid() . '-' . time(),
]);
$context = stream_context_create(['http' => [
    'method' => 'POST',
    'header' => "Content-Type: application/x-www-form-urlencoded; charset=GBK\r\nX-Api-Key: php-demo-key\r\n",
    'content' => $body,
    'ignore_errors' => true,
    'timeout' => 10,
]]);
$answer = file_get_contents($base . '/legacy/php/message', false, $context);
if ($answer === false) {
    fwrite(STDERR, "protofuse is not reachable at $base\n");
    exit(2);
}
echo $answer, "\n";
$decoded = json_decode($answer, true);
exit(isset($decoded['code']) && $decoded['code'] === 0 ? 0 : 1);
