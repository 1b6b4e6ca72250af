// The messages the shim speaks, on the hand-written codec (Proto.swift). Field numbers from
// containerd 1.6 / ttrpc / cgroups v2 protos (see ../shared/PROTOCOLS.md and Tests/Support/SkiffProto/proto).
// Written by scripts/gen-wire.py from its field table; the tests check every message against
// swift-protobuf's generated code.

/// containerd.types.TaskStatus (Status in 1.6's task API).
public enum TaskStatus: UInt64, Sendable { case unknown = 0, created, running, stopped, paused, pausing }

public struct TTRPCKeyValue: ProtoMessage, Equatable, Sendable {
    public static let protoName = "ttrpc.KeyValue"
    public var key: String = ""
    public var value: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, key)
        w.string(2, value)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: key = try v.string(field)
        case 2: value = try v.string(field)
        default: break
        }
    }
}

public struct TTRPCRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "ttrpc.Request"
    public var service: String = ""
    public var method: String = ""
    public var payload: [UInt8] = []
    public var timeoutNano: Int64 = 0
    public var metadata: [TTRPCKeyValue] = []
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, service)
        w.string(2, method)
        w.bytes(3, payload)
        w.int(4, timeoutNano)
        w.messages(5, metadata)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: service = try v.string(field)
        case 2: method = try v.string(field)
        case 3: payload = try v.bytes(field)
        case 4: timeoutNano = try v.int64(field)
        case 5: metadata.append(try v.message(field, TTRPCKeyValue.self))
        default: break
        }
    }
}

public struct RPCStatus: ProtoMessage, Equatable, Sendable {
    public static let protoName = "google.rpc.Status"
    public var code: Int32 = 0
    public var message: String = ""
    public var details: [ProtoAny] = []
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.int(1, code)
        w.string(2, message)
        w.messages(3, details)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: code = try v.int32(field)
        case 2: message = try v.string(field)
        case 3: details.append(try v.message(field, ProtoAny.self))
        default: break
        }
    }
}

public struct TTRPCResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "ttrpc.Response"
    public var status: RPCStatus? = nil
    public var payload: [UInt8] = []
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.message(1, status)
        w.bytes(2, payload)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: status = try v.message(field, RPCStatus.self)
        case 2: payload = try v.bytes(field)
        default: break
        }
    }
}

public struct Mount: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.types.Mount"
    public var type: String = ""
    public var source: String = ""
    public var target: String = ""
    public var options: [String] = []
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, type)
        w.string(2, source)
        w.string(3, target)
        w.strings(4, options)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: type = try v.string(field)
        case 2: source = try v.string(field)
        case 3: target = try v.string(field)
        case 4: options.append(try v.string(field))
        default: break
        }
    }
}

public struct ProcessInfo: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.types.ProcessInfo"
    public var pid: UInt32 = 0
    public var info: ProtoAny? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, pid)
        w.message(2, info)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: pid = try v.uint32(field)
        case 2: info = try v.message(field, ProtoAny.self)
        default: break
        }
    }
}

public struct CreateTaskRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.CreateTaskRequest"
    public var id: String = ""
    public var bundle: String = ""
    public var rootfs: [Mount] = []
    public var terminal: Bool = false
    public var stdin: String = ""
    public var stdout: String = ""
    public var stderr: String = ""
    public var checkpoint: String = ""
    public var parentCheckpoint: String = ""
    public var options: ProtoAny? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, bundle)
        w.messages(3, rootfs)
        w.bool(4, terminal)
        w.string(5, stdin)
        w.string(6, stdout)
        w.string(7, stderr)
        w.string(8, checkpoint)
        w.string(9, parentCheckpoint)
        w.message(10, options)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: bundle = try v.string(field)
        case 3: rootfs.append(try v.message(field, Mount.self))
        case 4: terminal = try v.bool(field)
        case 5: stdin = try v.string(field)
        case 6: stdout = try v.string(field)
        case 7: stderr = try v.string(field)
        case 8: checkpoint = try v.string(field)
        case 9: parentCheckpoint = try v.string(field)
        case 10: options = try v.message(field, ProtoAny.self)
        default: break
        }
    }
}

public struct CreateTaskResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.CreateTaskResponse"
    public var pid: UInt32 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, pid)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: pid = try v.uint32(field)
        default: break
        }
    }
}

public struct DeleteRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.DeleteRequest"
    public var id: String = ""
    public var execID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        default: break
        }
    }
}

public struct DeleteResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.DeleteResponse"
    public var pid: UInt32 = 0
    public var exitStatus: UInt32 = 0
    public var exitedAt: ProtoTimestamp? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, pid)
        w.uint(2, exitStatus)
        w.message(3, exitedAt)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: pid = try v.uint32(field)
        case 2: exitStatus = try v.uint32(field)
        case 3: exitedAt = try v.message(field, ProtoTimestamp.self)
        default: break
        }
    }
}

public struct ExecProcessRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.ExecProcessRequest"
    public var id: String = ""
    public var execID: String = ""
    public var terminal: Bool = false
    public var stdin: String = ""
    public var stdout: String = ""
    public var stderr: String = ""
    public var spec: ProtoAny? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
        w.bool(3, terminal)
        w.string(4, stdin)
        w.string(5, stdout)
        w.string(6, stderr)
        w.message(7, spec)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        case 3: terminal = try v.bool(field)
        case 4: stdin = try v.string(field)
        case 5: stdout = try v.string(field)
        case 6: stderr = try v.string(field)
        case 7: spec = try v.message(field, ProtoAny.self)
        default: break
        }
    }
}

public struct ResizePtyRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.ResizePtyRequest"
    public var id: String = ""
    public var execID: String = ""
    public var width: UInt32 = 0
    public var height: UInt32 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
        w.uint(3, width)
        w.uint(4, height)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        case 3: width = try v.uint32(field)
        case 4: height = try v.uint32(field)
        default: break
        }
    }
}

public struct StateRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.StateRequest"
    public var id: String = ""
    public var execID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        default: break
        }
    }
}

public struct StateResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.StateResponse"
    public var id: String = ""
    public var bundle: String = ""
    public var pid: UInt32 = 0
    public var status: TaskStatus = .unknown
    public var stdin: String = ""
    public var stdout: String = ""
    public var stderr: String = ""
    public var terminal: Bool = false
    public var exitStatus: UInt32 = 0
    public var exitedAt: ProtoTimestamp? = nil
    public var execID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, bundle)
        w.uint(3, pid)
        w.uint(4, status.rawValue)
        w.string(5, stdin)
        w.string(6, stdout)
        w.string(7, stderr)
        w.bool(8, terminal)
        w.uint(9, exitStatus)
        w.message(10, exitedAt)
        w.string(11, execID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: bundle = try v.string(field)
        case 3: pid = try v.uint32(field)
        case 4: status = TaskStatus(rawValue: try v.uint64(field)) ?? .unknown
        case 5: stdin = try v.string(field)
        case 6: stdout = try v.string(field)
        case 7: stderr = try v.string(field)
        case 8: terminal = try v.bool(field)
        case 9: exitStatus = try v.uint32(field)
        case 10: exitedAt = try v.message(field, ProtoTimestamp.self)
        case 11: execID = try v.string(field)
        default: break
        }
    }
}

public struct KillRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.KillRequest"
    public var id: String = ""
    public var execID: String = ""
    public var signal: UInt32 = 0
    public var all: Bool = false
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
        w.uint(3, signal)
        w.bool(4, all)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        case 3: signal = try v.uint32(field)
        case 4: all = try v.bool(field)
        default: break
        }
    }
}

public struct CloseIORequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.CloseIORequest"
    public var id: String = ""
    public var execID: String = ""
    public var stdin: Bool = false
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
        w.bool(3, stdin)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        case 3: stdin = try v.bool(field)
        default: break
        }
    }
}

public struct PidsRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.PidsRequest"
    public var id: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        default: break
        }
    }
}

public struct PidsResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.PidsResponse"
    public var processes: [ProcessInfo] = []
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.messages(1, processes)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: processes.append(try v.message(field, ProcessInfo.self))
        default: break
        }
    }
}

public struct CheckpointTaskRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.CheckpointTaskRequest"
    public var id: String = ""
    public var path: String = ""
    public var options: ProtoAny? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, path)
        w.message(3, options)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: path = try v.string(field)
        case 3: options = try v.message(field, ProtoAny.self)
        default: break
        }
    }
}

public struct UpdateTaskRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.UpdateTaskRequest"
    public var id: String = ""
    public var resources: ProtoAny? = nil
    public var annotations: [String: String] = [:]
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.message(2, resources)
        for (key, value) in annotations.sorted(by: { $0.key < $1.key }) { var e = TTRPCKeyValue(); e.key = key; e.value = value; w.message(3, e) }
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: resources = try v.message(field, ProtoAny.self)
        case 3: let kv = try v.message(field, TTRPCKeyValue.self); annotations[kv.key] = kv.value
        default: break
        }
    }
}

public struct StartRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.StartRequest"
    public var id: String = ""
    public var execID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        default: break
        }
    }
}

public struct StartResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.StartResponse"
    public var pid: UInt32 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, pid)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: pid = try v.uint32(field)
        default: break
        }
    }
}

public struct WaitRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.WaitRequest"
    public var id: String = ""
    public var execID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.string(2, execID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: execID = try v.string(field)
        default: break
        }
    }
}

public struct WaitResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.WaitResponse"
    public var exitStatus: UInt32 = 0
    public var exitedAt: ProtoTimestamp? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, exitStatus)
        w.message(2, exitedAt)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: exitStatus = try v.uint32(field)
        case 2: exitedAt = try v.message(field, ProtoTimestamp.self)
        default: break
        }
    }
}

public struct StatsRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.StatsRequest"
    public var id: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        default: break
        }
    }
}

public struct StatsResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.StatsResponse"
    public var stats: ProtoAny? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.message(1, stats)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: stats = try v.message(field, ProtoAny.self)
        default: break
        }
    }
}

public struct ConnectRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.ConnectRequest"
    public var id: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        default: break
        }
    }
}

public struct ConnectResponse: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.ConnectResponse"
    public var shimPid: UInt32 = 0
    public var taskPid: UInt32 = 0
    public var version: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, shimPid)
        w.uint(2, taskPid)
        w.string(3, version)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: shimPid = try v.uint32(field)
        case 2: taskPid = try v.uint32(field)
        case 3: version = try v.string(field)
        default: break
        }
    }
}

public struct ShutdownRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.ShutdownRequest"
    public var id: String = ""
    public var now: Bool = false
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
        w.bool(2, now)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        case 2: now = try v.bool(field)
        default: break
        }
    }
}

public struct PauseRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.PauseRequest"
    public var id: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        default: break
        }
    }
}

public struct ResumeRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.task.v2.ResumeRequest"
    public var id: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, id)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: id = try v.string(field)
        default: break
        }
    }
}

public struct TaskIO: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskIO"
    public var stdin: String = ""
    public var stdout: String = ""
    public var stderr: String = ""
    public var terminal: Bool = false
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, stdin)
        w.string(2, stdout)
        w.string(3, stderr)
        w.bool(4, terminal)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: stdin = try v.string(field)
        case 2: stdout = try v.string(field)
        case 3: stderr = try v.string(field)
        case 4: terminal = try v.bool(field)
        default: break
        }
    }
}

public struct TaskCreate: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskCreate"
    public var containerID: String = ""
    public var bundle: String = ""
    public var rootfs: [Mount] = []
    public var io: TaskIO? = nil
    public var checkpoint: String = ""
    public var pid: UInt32 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
        w.string(2, bundle)
        w.messages(3, rootfs)
        w.message(4, io)
        w.string(5, checkpoint)
        w.uint(6, pid)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        case 2: bundle = try v.string(field)
        case 3: rootfs.append(try v.message(field, Mount.self))
        case 4: io = try v.message(field, TaskIO.self)
        case 5: checkpoint = try v.string(field)
        case 6: pid = try v.uint32(field)
        default: break
        }
    }
}

public struct TaskStart: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskStart"
    public var containerID: String = ""
    public var pid: UInt32 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
        w.uint(2, pid)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        case 2: pid = try v.uint32(field)
        default: break
        }
    }
}

public struct TaskDelete: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskDelete"
    public var containerID: String = ""
    public var pid: UInt32 = 0
    public var exitStatus: UInt32 = 0
    public var exitedAt: ProtoTimestamp? = nil
    public var id: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
        w.uint(2, pid)
        w.uint(3, exitStatus)
        w.message(4, exitedAt)
        w.string(5, id)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        case 2: pid = try v.uint32(field)
        case 3: exitStatus = try v.uint32(field)
        case 4: exitedAt = try v.message(field, ProtoTimestamp.self)
        case 5: id = try v.string(field)
        default: break
        }
    }
}

public struct TaskExit: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskExit"
    public var containerID: String = ""
    public var id: String = ""
    public var pid: UInt32 = 0
    public var exitStatus: UInt32 = 0
    public var exitedAt: ProtoTimestamp? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
        w.string(2, id)
        w.uint(3, pid)
        w.uint(4, exitStatus)
        w.message(5, exitedAt)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        case 2: id = try v.string(field)
        case 3: pid = try v.uint32(field)
        case 4: exitStatus = try v.uint32(field)
        case 5: exitedAt = try v.message(field, ProtoTimestamp.self)
        default: break
        }
    }
}

public struct TaskOOM: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskOOM"
    public var containerID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        default: break
        }
    }
}

public struct TaskExecAdded: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskExecAdded"
    public var containerID: String = ""
    public var execID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
        w.string(2, execID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        case 2: execID = try v.string(field)
        default: break
        }
    }
}

public struct TaskExecStarted: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskExecStarted"
    public var containerID: String = ""
    public var execID: String = ""
    public var pid: UInt32 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
        w.string(2, execID)
        w.uint(3, pid)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        case 2: execID = try v.string(field)
        case 3: pid = try v.uint32(field)
        default: break
        }
    }
}

public struct TaskPaused: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskPaused"
    public var containerID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        default: break
        }
    }
}

public struct TaskResumed: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.events.TaskResumed"
    public var containerID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, containerID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: containerID = try v.string(field)
        default: break
        }
    }
}

public struct Envelope: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.services.events.ttrpc.v1.Envelope"
    public var timestamp: ProtoTimestamp? = nil
    public var namespace: String = ""
    public var topic: String = ""
    public var event: ProtoAny? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.message(1, timestamp)
        w.string(2, namespace)
        w.string(3, topic)
        w.message(4, event)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: timestamp = try v.message(field, ProtoTimestamp.self)
        case 2: namespace = try v.string(field)
        case 3: topic = try v.string(field)
        case 4: event = try v.message(field, ProtoAny.self)
        default: break
        }
    }
}

public struct ForwardRequest: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.services.events.ttrpc.v1.ForwardRequest"
    public var envelope: Envelope? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.message(1, envelope)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: envelope = try v.message(field, Envelope.self)
        default: break
        }
    }
}

public struct RuntimeOptions: ProtoMessage, Equatable, Sendable {
    public static let protoName = "runtimeoptions.v1.Options"
    public var typeURL: String = ""
    public var configPath: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, typeURL)
        w.string(2, configPath)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: typeURL = try v.string(field)
        case 2: configPath = try v.string(field)
        default: break
        }
    }
}

public struct RuncOptions: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.runc.v1.Options"
    public var noPivotRoot: Bool = false
    public var noNewKeyring: Bool = false
    public var shimCgroup: String = ""
    public var ioUid: UInt32 = 0
    public var ioGid: UInt32 = 0
    public var binaryName: String = ""
    public var root: String = ""
    public var criuPath: String = ""
    public var systemdCgroup: Bool = false
    public var criuImagePath: String = ""
    public var criuWorkPath: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.bool(1, noPivotRoot)
        w.bool(2, noNewKeyring)
        w.string(3, shimCgroup)
        w.uint(4, ioUid)
        w.uint(5, ioGid)
        w.string(6, binaryName)
        w.string(7, root)
        w.string(8, criuPath)
        w.bool(9, systemdCgroup)
        w.string(10, criuImagePath)
        w.string(11, criuWorkPath)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: noPivotRoot = try v.bool(field)
        case 2: noNewKeyring = try v.bool(field)
        case 3: shimCgroup = try v.string(field)
        case 4: ioUid = try v.uint32(field)
        case 5: ioGid = try v.uint32(field)
        case 6: binaryName = try v.string(field)
        case 7: root = try v.string(field)
        case 8: criuPath = try v.string(field)
        case 9: systemdCgroup = try v.bool(field)
        case 10: criuImagePath = try v.string(field)
        case 11: criuWorkPath = try v.string(field)
        default: break
        }
    }
}

public struct ProcessDetails: ProtoMessage, Equatable, Sendable {
    public static let protoName = "containerd.runc.v1.ProcessDetails"
    public var execID: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.string(1, execID)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: execID = try v.string(field)
        default: break
        }
    }
}

public struct PidsStat: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.PidsStat"
    public var current: UInt64 = 0
    public var limit: UInt64 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, current)
        w.uint(2, limit)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: current = try v.uint64(field)
        case 2: limit = try v.uint64(field)
        default: break
        }
    }
}

public struct CPUStat: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.CPUStat"
    public var usageUsec: UInt64 = 0
    public var userUsec: UInt64 = 0
    public var systemUsec: UInt64 = 0
    public var nrPeriods: UInt64 = 0
    public var nrThrottled: UInt64 = 0
    public var throttledUsec: UInt64 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, usageUsec)
        w.uint(2, userUsec)
        w.uint(3, systemUsec)
        w.uint(4, nrPeriods)
        w.uint(5, nrThrottled)
        w.uint(6, throttledUsec)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: usageUsec = try v.uint64(field)
        case 2: userUsec = try v.uint64(field)
        case 3: systemUsec = try v.uint64(field)
        case 4: nrPeriods = try v.uint64(field)
        case 5: nrThrottled = try v.uint64(field)
        case 6: throttledUsec = try v.uint64(field)
        default: break
        }
    }
}

public struct MemoryStat: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.MemoryStat"
    public var anon: UInt64 = 0
    public var file: UInt64 = 0
    public var kernelStack: UInt64 = 0
    public var slab: UInt64 = 0
    public var sock: UInt64 = 0
    public var shmem: UInt64 = 0
    public var fileMapped: UInt64 = 0
    public var fileDirty: UInt64 = 0
    public var fileWriteback: UInt64 = 0
    public var anonThp: UInt64 = 0
    public var inactiveAnon: UInt64 = 0
    public var activeAnon: UInt64 = 0
    public var inactiveFile: UInt64 = 0
    public var activeFile: UInt64 = 0
    public var unevictable: UInt64 = 0
    public var slabReclaimable: UInt64 = 0
    public var slabUnreclaimable: UInt64 = 0
    public var pgfault: UInt64 = 0
    public var pgmajfault: UInt64 = 0
    public var workingsetRefault: UInt64 = 0
    public var workingsetActivate: UInt64 = 0
    public var workingsetNodereclaim: UInt64 = 0
    public var pgrefill: UInt64 = 0
    public var pgscan: UInt64 = 0
    public var pgsteal: UInt64 = 0
    public var pgactivate: UInt64 = 0
    public var pgdeactivate: UInt64 = 0
    public var pglazyfree: UInt64 = 0
    public var pglazyfreed: UInt64 = 0
    public var thpFaultAlloc: UInt64 = 0
    public var thpCollapseAlloc: UInt64 = 0
    public var usage: UInt64 = 0
    public var usageLimit: UInt64 = 0
    public var swapUsage: UInt64 = 0
    public var swapLimit: UInt64 = 0
    public var maxUsage: UInt64 = 0
    public var swapMaxUsage: UInt64 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, anon)
        w.uint(2, file)
        w.uint(3, kernelStack)
        w.uint(4, slab)
        w.uint(5, sock)
        w.uint(6, shmem)
        w.uint(7, fileMapped)
        w.uint(8, fileDirty)
        w.uint(9, fileWriteback)
        w.uint(10, anonThp)
        w.uint(11, inactiveAnon)
        w.uint(12, activeAnon)
        w.uint(13, inactiveFile)
        w.uint(14, activeFile)
        w.uint(15, unevictable)
        w.uint(16, slabReclaimable)
        w.uint(17, slabUnreclaimable)
        w.uint(18, pgfault)
        w.uint(19, pgmajfault)
        w.uint(20, workingsetRefault)
        w.uint(21, workingsetActivate)
        w.uint(22, workingsetNodereclaim)
        w.uint(23, pgrefill)
        w.uint(24, pgscan)
        w.uint(25, pgsteal)
        w.uint(26, pgactivate)
        w.uint(27, pgdeactivate)
        w.uint(28, pglazyfree)
        w.uint(29, pglazyfreed)
        w.uint(30, thpFaultAlloc)
        w.uint(31, thpCollapseAlloc)
        w.uint(32, usage)
        w.uint(33, usageLimit)
        w.uint(34, swapUsage)
        w.uint(35, swapLimit)
        w.uint(36, maxUsage)
        w.uint(37, swapMaxUsage)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: anon = try v.uint64(field)
        case 2: file = try v.uint64(field)
        case 3: kernelStack = try v.uint64(field)
        case 4: slab = try v.uint64(field)
        case 5: sock = try v.uint64(field)
        case 6: shmem = try v.uint64(field)
        case 7: fileMapped = try v.uint64(field)
        case 8: fileDirty = try v.uint64(field)
        case 9: fileWriteback = try v.uint64(field)
        case 10: anonThp = try v.uint64(field)
        case 11: inactiveAnon = try v.uint64(field)
        case 12: activeAnon = try v.uint64(field)
        case 13: inactiveFile = try v.uint64(field)
        case 14: activeFile = try v.uint64(field)
        case 15: unevictable = try v.uint64(field)
        case 16: slabReclaimable = try v.uint64(field)
        case 17: slabUnreclaimable = try v.uint64(field)
        case 18: pgfault = try v.uint64(field)
        case 19: pgmajfault = try v.uint64(field)
        case 20: workingsetRefault = try v.uint64(field)
        case 21: workingsetActivate = try v.uint64(field)
        case 22: workingsetNodereclaim = try v.uint64(field)
        case 23: pgrefill = try v.uint64(field)
        case 24: pgscan = try v.uint64(field)
        case 25: pgsteal = try v.uint64(field)
        case 26: pgactivate = try v.uint64(field)
        case 27: pgdeactivate = try v.uint64(field)
        case 28: pglazyfree = try v.uint64(field)
        case 29: pglazyfreed = try v.uint64(field)
        case 30: thpFaultAlloc = try v.uint64(field)
        case 31: thpCollapseAlloc = try v.uint64(field)
        case 32: usage = try v.uint64(field)
        case 33: usageLimit = try v.uint64(field)
        case 34: swapUsage = try v.uint64(field)
        case 35: swapLimit = try v.uint64(field)
        case 36: maxUsage = try v.uint64(field)
        case 37: swapMaxUsage = try v.uint64(field)
        default: break
        }
    }
}

public struct MemoryEvents: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.MemoryEvents"
    public var low: UInt64 = 0
    public var high: UInt64 = 0
    public var max: UInt64 = 0
    public var oom: UInt64 = 0
    public var oomKill: UInt64 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, low)
        w.uint(2, high)
        w.uint(3, max)
        w.uint(4, oom)
        w.uint(5, oomKill)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: low = try v.uint64(field)
        case 2: high = try v.uint64(field)
        case 3: max = try v.uint64(field)
        case 4: oom = try v.uint64(field)
        case 5: oomKill = try v.uint64(field)
        default: break
        }
    }
}

public struct IOEntry: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.IOEntry"
    public var major: UInt64 = 0
    public var minor: UInt64 = 0
    public var rbytes: UInt64 = 0
    public var wbytes: UInt64 = 0
    public var rios: UInt64 = 0
    public var wios: UInt64 = 0
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, major)
        w.uint(2, minor)
        w.uint(3, rbytes)
        w.uint(4, wbytes)
        w.uint(5, rios)
        w.uint(6, wios)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: major = try v.uint64(field)
        case 2: minor = try v.uint64(field)
        case 3: rbytes = try v.uint64(field)
        case 4: wbytes = try v.uint64(field)
        case 5: rios = try v.uint64(field)
        case 6: wios = try v.uint64(field)
        default: break
        }
    }
}

public struct IOStat: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.IOStat"
    public var usage: [IOEntry] = []
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.messages(1, usage)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: usage.append(try v.message(field, IOEntry.self))
        default: break
        }
    }
}

public struct HugeTlbStat: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.HugeTlbStat"
    public var current: UInt64 = 0
    public var max: UInt64 = 0
    public var pagesize: String = ""
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.uint(1, current)
        w.uint(2, max)
        w.string(3, pagesize)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: current = try v.uint64(field)
        case 2: max = try v.uint64(field)
        case 3: pagesize = try v.string(field)
        default: break
        }
    }
}

public struct Metrics: ProtoMessage, Equatable, Sendable {
    public static let protoName = "io.containerd.cgroups.v2.Metrics"
    public var pids: PidsStat? = nil
    public var cpu: CPUStat? = nil
    public var memory: MemoryStat? = nil
    public var io: IOStat? = nil
    public var hugetlb: [HugeTlbStat] = []
    public var memoryEvents: MemoryEvents? = nil
    public init() {}
    public func encode(to w: inout ProtoWriter) {
        w.message(1, pids)
        w.message(2, cpu)
        w.message(4, memory)
        w.message(6, io)
        w.messages(7, hugetlb)
        w.message(8, memoryEvents)
    }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: pids = try v.message(field, PidsStat.self)
        case 2: cpu = try v.message(field, CPUStat.self)
        case 4: memory = try v.message(field, MemoryStat.self)
        case 6: io = try v.message(field, IOStat.self)
        case 7: hugetlb.append(try v.message(field, HugeTlbStat.self))
        case 8: memoryEvents = try v.message(field, MemoryEvents.self)
        default: break
        }
    }
}
