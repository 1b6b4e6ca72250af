import Foundation

/// The bytes of one layer blob on their way from the registry to an extractor thread, in order.
/// The download offers each piece with its offset in the blob; a piece that does not continue
/// what came before (a registry that answered a Range request with the whole blob) breaks the
/// feed, and the layer is then unpacked from the content store after its download, as before.
/// At most `capacity` bytes wait: a download faster than the disk waits for the extractor.
final class LayerFeed: @unchecked Sendable {
    static let capacity = 8 << 20

    private let cond = NSCondition()
    private var buffer: [UInt8] = []
    private var head = 0
    /// Offset in the blob of the next byte the download must offer.
    private var fed = 0
    private enum End { case open, complete, aborted }
    private var end = End.open
    /// Set by the extractor when it stops reading: the diff ID it computed, or why it failed.
    private var outcome: Result<String, Error>?
    private var started = false
    /// Reads the layer from `take` and returns its diff ID (on the extractor thread).
    private let extract: (LayerFeed) throws -> String

    init(_ extract: @escaping (LayerFeed) throws -> String) { self.extract = extract }

    /// The download's side: `bytes` are the blob's bytes at `offset`.
    func offer(at offset: Int, _ bytes: UnsafeRawBufferPointer) {
        cond.lock()
        defer { cond.unlock() }
        guard end == .open else { return }
        guard offset == fed else {
            end = .aborted
            cond.broadcast()
            return
        }
        fed += bytes.count
        // The extractor may have stopped (an error, or the end of a gzip stream before trailing
        // bytes): the offsets are still followed, the bytes no longer kept.
        while outcome == nil && buffer.count - head >= LayerFeed.capacity && end == .open { cond.wait() }
        guard outcome == nil, end == .open else { return }
        if head > 0 && head >= buffer.count / 2 {
            buffer.removeFirst(head)
            head = 0
        }
        buffer.append(contentsOf: bytes)
        cond.broadcast()
    }

    /// After the download: the whole blob, `size` bytes and verified, went through the feed, or
    /// (nil, or another size) it did not and the extractor's work is thrown away.
    func close(verifiedSize size: Int?) {
        cond.lock()
        if end == .open { end = size == fed ? .complete : .aborted }
        cond.broadcast()
        cond.unlock()
    }

    /// The extractor's side: up to n bytes, blocking until some arrive; none at the end.
    func take(_ n: Int) throws -> [UInt8] {
        cond.lock()
        defer { cond.unlock() }
        while head == buffer.count && end == .open { cond.wait() }
        if end == .aborted { throw ManagerError("unpack", nil, "the download did not complete") }
        let count = min(n, buffer.count - head)
        let out = Array(buffer[head..<head + count])
        head += count
        cond.broadcast()
        return out
    }

    /// Starts the extractor on a thread of its own, reading from this feed: when the blob's
    /// download begins, so that no more extractors run than downloads. A thread that cannot be
    /// made is an extraction that failed (the layer is unpacked after the pull).
    func start() {
        cond.lock()
        let first = !started
        started = true
        cond.unlock()
        guard first else { return }
        let me = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let feed = Unmanaged<LayerFeed>.fromOpaque(arg!).takeRetainedValue()
                let result: Result<String, Error>
                do { result = .success(try feed.extract(feed)) } catch { result = .failure(error) }
                feed.stopped(result)
                return nil
            }, me.toOpaque())
        if rc != 0 {
            me.release()
            stopped(.failure(ManagerError("unpack", nil, "cannot start a thread: \(String(cString: strerror(rc)))")))
        } else {
            pthread_detach(thread)
        }
    }

    private func stopped(_ result: Result<String, Error>) {
        cond.lock()
        outcome = result
        buffer = []
        head = 0
        cond.broadcast()
        cond.unlock()
    }

    /// Waits for the extractor (call `close` first): its diff ID, or nil when it failed, never
    /// started, or the feed did not complete.
    func wait() -> String? {
        cond.lock()
        defer { cond.unlock() }
        guard started else { return nil }
        while outcome == nil { cond.wait() }
        guard end == .complete, case .success(let diffID) = outcome! else { return nil }
        return diffID
    }
}

/// Layers unpacked while they download (as containerd ≥ 1.7 overlaps the two): before the
/// download starts, each layer that is neither unpacked nor in the content store gets a pending
/// snapshot and an extractor thread fed by the download. An overlayfs layer's directory holds
/// only its own changes, so layers are extracted side by side in any order; they are committed
/// in chain order afterwards, each only when its blob's digest, its diff ID and its parent are
/// all there. Anything else (native snapshots, a broken feed, an extraction error) is discarded
/// and left to `Unpacker.unpack` after the pull, which reports errors as it always has: this
/// moves work earlier, it never changes the outcome.
///
/// As containerd's unpacker does, each extraction is a snapshot under a key of its own
/// (`extract-<pid>-<random>-<chain ID>`), renamed to the chain ID when it is committed; the
/// layer's lock is taken only for that. So a download that a registry trickles for hours holds
/// up no other command that needs the same layer: that one unpacks it itself, and whichever
/// commits second throws its copy away.
final class StreamingUnpack {
    struct Layer {
        let blob: Descriptor
        let diffID: String
        let chainID: String
        /// The extraction's snapshot (its parent is the chain's parent layer).
        let snapshot: Snapshotter.Info
        /// Its lock (`Snapshotter.lockNew`), held until it is committed or discarded.
        let lock: Int32
        let feed: LayerFeed
    }

    static let limit = 16
    let snapshots: Snapshotter
    private(set) var layers: [Layer] = []

    /// The feeds by blob digest, for the download.
    var feeds: [String: LayerFeed] {
        var out: [String: LayerFeed] = [:]
        for l in layers { out[l.blob.digest] = l.feed }
        return out
    }

    init(snapshots: Snapshotter, content: ContentStore, manifest: ImageManifest, config: ImageConfig) {
        self.snapshots = snapshots
        let diffIDs = config.rootfs.diff_ids
        // Diff IDs that are not digests are unpack's to refuse (the first names the first layer).
        guard snapshots.kind == .overlayfs, manifest.layers.count == diffIDs.count, diffIDs.allSatisfy(Snapshotter.isChainID) else { return }
        snapshots.sweepAbandonedExtractions()
        var parent: String?
        var digests = Set<String>()
        for ((blob, diffID), chainID) in zip(zip(manifest.layers, diffIDs), Snapshotter.chainIDs(diffIDs)) {
            defer { parent = chainID }
            // A blob already stored has no download to overlap; a blob listed twice is fetched once.
            guard !content.exists(blob.digest), digests.insert(blob.digest).inserted, !committed(chainID) else { continue }
            // Each streamed layer holds a lock fd and a pending snapshot until the pull ends: the
            // layers after the first `limit` are unpacked after it (an image of 100 layers ran
            // a pull out of fds).
            guard layers.count < StreamingUnpack.limit else { break }
            let key = "extract-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))-\(chainID)"
            guard let lock = try? snapshots.lockNew(key) else { continue }
            do {
                let s = try snapshots.begin(key: key, parent: parent, kind: "committed")
                layers.append(
                    Layer(
                        blob: blob, diffID: diffID, chainID: chainID, snapshot: s, lock: lock,
                        feed: extractor(blob, into: snapshots.fs(s.id))))
            } catch {
                snapshots.unlockNew(key, lock)
            }
        }
    }

    /// A feed whose thread applies the layer to `root` and returns its diff ID.
    func extractor(_ blob: Descriptor, into root: String) -> LayerFeed {
        LayerFeed { feed in
            let stream = try LayerStream(label: blob.digest, mediaType: blob.mediaType) { n in try feed.take(n) }
            try LayerApplier(root: root).apply(TarReader { n in try stream.read(n) })
            return try stream.finish()
        }
    }

    func committed(_ key: String) -> Bool {
        guard let s = try? snapshots.get(key) else { return false }
        return s.kind == "committed"
    }

    /// After the download (fetchBlob closed each feed it started, complete only for a verified
    /// blob): commits, in chain order, each layer whose extraction gave its diff ID on a
    /// committed parent; discards the others. Never throws: what is not committed here is
    /// unpacked later.
    func finish() {
        for l in layers {
            defer { snapshots.unlockNew(l.snapshot.key, l.lock) }
            var keep = l.feed.wait() == l.diffID
            if keep, let parent = l.snapshot.parent { keep = committed(parent) }
            // Not committed when another command committed the layer first: ours goes.
            if keep, (try? snapshots.commitExtracted(l.snapshot, as: l.chainID)) == true { continue }
            snapshots.discard(l.snapshot)
        }
        layers = []
    }
}
