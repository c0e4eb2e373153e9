#!/usr/bin/env bash
# Builds the solution in Release and links the two executables into bin/: bin/node and
# bin/client. They are reached by path, never through PATH, where Node.js has a `node` too.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v dotnet >/dev/null 2>&1; then
  echo "build: the .NET 10 SDK is needed (dotnet not found on PATH)" >&2
  exit 1
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build KvReplica.sln -c Release --nologo -v quiet -clp:NoSummary "$@" >&2
mkdir -p bin
ln -sfn ../Node/bin/Release/net10.0/node bin/node
ln -sfn ../Client/Cli/bin/Release/net10.0/client bin/client
