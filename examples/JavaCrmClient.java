// A Java CRM calling protofuse's java-crm adapter (config/adapters/java-crm.toml): camelCase JSON in the CRM's
// own envelope, signed with HMAC-SHA256 over the documented canonical string. JDK 11+ only, no libraries.
// Usage: java examples/JavaCrmClient.java [BASE_URL] [CUSTOMER_ID]
// Prints protofuse's answer and exits 0 when the message was accepted.

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.UUID;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class JavaCrmClient {
    static final String SECRET = "crm-demo-secret";
    static final String PATH = "/legacy/crm/messages";

    public static void main(String[] args) throws Exception {
        String base = args.length > 0 ? args[0] : "http://127.0.0.1:8080";
        String customer = args.length > 1 ? args[1] : "crm-customer-1";
        String requestId = UUID.randomUUID().toString();
        String body = "{\"header\":{\"appId\":\"crm\",\"requestId\":\"" + requestId + "\"},"
                + "\"body\":{\"customerId\":\"" + customer + "\",\"customerName\":\"Zhang Wei\","
                + "\"msgType\":\"TEXT\",\"content\":\"快递到哪了? where is my parcel\","
                + "\"sentAt\":" + System.currentTimeMillis() + ",\"orderNo\":\"SO-2024-0042\"}}";
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        String timestamp = Long.toString(System.currentTimeMillis() / 1000);
        String nonce = UUID.randomUUID().toString();
        String bodyHash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        String canonical = "POST\n" + PATH + "\n" + timestamp + "\n" + nonce + "\n" + bodyHash;
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(SECRET.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        String signature = HexFormat.of().formatHex(mac.doFinal(canonical.getBytes(StandardCharsets.UTF_8)));

        HttpRequest request = HttpRequest.newBuilder(URI.create(base + PATH))
                .header("Content-Type", "application/json; charset=utf-8")
                .header("X-Timestamp", timestamp)
                .header("X-Nonce", nonce)
                .header("X-Signature", signature)
                .POST(HttpRequest.BodyPublishers.ofByteArray(bytes))
                .build();
        HttpResponse<String> response = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.body());
        System.exit(response.statusCode() == 200 && response.body().contains("\"success\":true") ? 0 : 1);
    }
}
