import Foundation
import SkiffTTRPC
import SkiffWire

/// `run -t`: our terminal in raw mode, its size sent as ResizePty, stdin copied to the task's
/// stdin FIFO and the pty's output to our stdout until the shim closes it.
enum Terminal {
    static func relay(client: TTRPCClient, id: String, stdinFifo: Int32, output: Int32, resize: (ResizePtyRequest) -> Void) {
        var saved = termios()
        let isTTY = isatty(0) != 0 && tcgetattr(0, &saved) == 0
        if isTTY {
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(0, TCSANOW, &raw)
            var ws = winsize()
            if ioctl(0, UInt(TIOCGWINSZ), &ws) == 0 {
                var r = ResizePtyRequest()
                r.id = id; r.width = UInt32(ws.ws_col); r.height = UInt32(ws.ws_row)
                resize(r)
            }
        }
        defer { if isTTY { tcsetattr(0, TCSANOW, &saved) } }
        var buf = [UInt8](repeating: 0, count: 65536)
        var stdinOpen = true
        while output >= 0 {
            var pfds = [pollfd(fd: output, events: Int16(POLLIN), revents: 0), pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0)]
            if poll(&pfds, 2, 200) < 0 && errno != EINTR { break }
            if pfds[1].revents != 0 {
                let n = read(0, &buf, buf.count)
                if n > 0 { _ = write(stdinFifo, buf, n) } else { stdinOpen = false }
            }
            if pfds[0].revents != 0 {
                let n = read(output, &buf, buf.count)
                if n > 0 { _ = write(1, buf, n) } else if n == 0 || errno != EAGAIN { break }
            }
        }
    }
}
