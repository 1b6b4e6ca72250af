import SkiffSys
import SkiffJSON

/// JSON for the runtime path, without FoundationEssentials (see SkiffJSON).
public enum JSON {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        try read(bytes, what) { try JSONCoder.decode(type, value: $0) }
    }

    // The runtime's own documents, read without Codable (SpecReader.swift). Overload resolution
    // picks these for Spec.self, Process.self, ExecConfig.self and ContainerRecord.self.
    public static func decode(_ type: Spec.Type, from bytes: [UInt8], what: String) throws -> Spec {
        try read(bytes, what, Spec.init(reading:))
    }
    public static func decode(_ type: Process.Type, from bytes: [UInt8], what: String) throws -> Process {
        try read(bytes, what, Process.init(reading:))
    }
    public static func decode(_ type: ExecConfig.Type, from bytes: [UInt8], what: String) throws -> ExecConfig {
        try read(bytes, what, ExecConfig.init(reading:))
    }
    public static func decode(_ type: ContainerRecord.Type, from bytes: [UInt8], what: String) throws -> ContainerRecord {
        try read(bytes, what, ContainerRecord.init(reading:))
    }

    static func read<T>(_ bytes: [UInt8], _ what: String, _ make: (JSONValue) throws -> T) throws -> T {
        do {
            let v = try JSONCoder.parse(bytes)
            // Refused as runc refuses it (Go's syscall layer: EINVAL), rather than cut short
            // at the NUL: `tr\u0000ue` would run `tr`. Annotations are free text no call takes.
            if JSONValue.mayHoldNUL(bytes), let path = v.pathOfNUL(skipping: "annotations") {
                throw JSONDecodeError.invalid(path: path, message: "contains a NUL byte (\\u0000), which no system call can take")
            }
            return try make(v)
        } catch let e as JSONDecodeError {
            throw SkiffError.msg("\(what): \(e)")
        }
    }

    public static func encode(_ r: ContainerRecord) -> [UInt8] { Array(r.json.serialized().utf8) }

    public static func encode<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> [UInt8] {
        Array(try encodeString(v, pretty: pretty, indent: indent).utf8)
    }

    public static func encodeString<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> String {
        try JSONCoder.encode(v, indent: pretty ? indent : nil)
    }
}
