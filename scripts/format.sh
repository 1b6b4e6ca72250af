#!/bin/sh
# Formats the hand-written Swift code with swift-format (.swift-format at the top); the test
# command checks it. Generated code (SkiffProto, SkiffWire/Messages.swift) is left alone.
set -eu
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
find Sources Tests -name '*.swift' ! -path '*/SkiffProto/*' ! -path 'Sources/SkiffWire/Messages.swift' -print0 \
  | xargs -0 swift-format format --in-place --parallel
