#!/usr/bin/env sh
# A .NET-style XML call to protofuse's dotnet-service adapter (config/adapters/dotnet-service.toml), with curl.
# Usage: examples/dotnet_xml_client.sh [BASE_URL]   -> prints {"Code":0,"Message":"OK",...}
base="${1:-http://127.0.0.1:8080}"
curl -sS "$base/legacy/dotnet/message" \
  -H 'Content-Type: application/xml; charset=utf-8' \
  -H 'Authorization: Bearer dotnet-demo-token' \
  --data-binary "<Message><MessageId>dotnet-$(date +%s%N)</MessageId><Customer><Id>dn-42</Id><FirstName>Ann</FirstName><LastName>Lee</LastName></Customer><Text>App 闪退了</Text><SentAt>$(date -u -d '+8 hours' '+%Y-%m-%d %H:%M:%S')</SentAt></Message>"
echo
