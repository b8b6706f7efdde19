/// Reassembles a Block1 upload (RFC 7959 §2.5) into one buffer no larger than a fixed cap.
///
/// The server side of a device uploading a body too big for one message (a transaction with a long proof).
/// Blocks must arrive in order: a device sends them one CON at a time, so a gap means a lost or stale
/// exchange, and storing blocks out of order would need memory for the holes. On any refusal the upload is
/// dropped and the thrown error's ``CoAPError/responseCode`` is the answer (4.08 to make the client start
/// again, 4.13 when the body is too large); the client restarts with block 0.
public struct BlockAssembler: Sendable {
    /// What the caller answers after a block was stored.
    public enum Progress: Equatable, Sendable {
        /// Answer 2.31 Continue carrying this Block1 value.
        case needMore(BlockOption)
        /// The body is in ``body``; process it and answer with the final code carrying this Block1 value.
        case complete(BlockOption)
    }

    /// Largest body accepted; the buffer never grows past it.
    public let maxSize: Int
    /// Largest block size the server wants; a client sending larger blocks is told this SZX (and the bytes it
    /// already sent are kept, as in RFC 7959 Figure 5).
    public let preferredSZX: UInt8
    /// The bytes received so far (the whole body once complete).
    public private(set) var body: [UInt8]
    /// Whether the last block (M = 0) has arrived.
    public private(set) var isComplete: Bool
    /// Whether block 0 has been received and the upload is in progress or complete.
    public private(set) var isStarted: Bool
    /// Start of the last stored block, to recognise a retransmission of it.
    private var lastBlockStart: Int

    public init(maxSize: Int, preferredSZX: UInt8 = BlockOption.maxSZX) {
        precondition(maxSize >= 0 && preferredSZX <= BlockOption.maxSZX, "BlockAssembler: bad limits")
        self.maxSize = maxSize
        self.preferredSZX = preferredSZX
        body = []
        isComplete = false
        isStarted = false
        lastBlockStart = 0
    }

    /// Forgets the upload in progress.
    public mutating func reset() {
        body.removeAll(keepingCapacity: true)
        isComplete = false
        isStarted = false
        lastBlockStart = 0
    }

    /// Returns the completed body and resets, or nil if the upload is not complete.
    public mutating func takeBody() -> [UInt8]? {
        guard isComplete else { return nil }
        let result = body
        reset()
        return result
    }

    /// Stores one block.
    ///
    /// - Block 0 always starts a new upload (the client restarted).
    /// - A non-final block must be exactly its SZX size; a final block at most that.
    /// - The block must start where the received bytes end, or be an identical repeat of the last block
    ///   (a retransmission whose answer was lost), which is answered again without storing.
    /// - `size1` is the client's announced total (Size1 option), refused early when over ``maxSize``.
    public mutating func add(_ block: BlockOption, payload: [UInt8], size1: UInt32? = nil) throws(CoAPError)
        -> Progress
    {
        let blockSize = block.size
        if (block.more && payload.count != blockSize) || payload.count > blockSize {
            reset()
            throw .blockSizeMismatch
        }
        if let size1, UInt64(size1) > UInt64(maxSize) {
            reset()
            throw .entityTooLarge
        }
        let start = block.offset
        if block.number != 0 && isStarted && start == lastBlockStart && start + payload.count == body.count
            && body[start...].elementsEqual(payload)
        {
            return progress(for: block)
        }
        if block.number == 0 {
            reset()
        } else if !isStarted || isComplete || start != body.count {
            reset()
            throw .blockOutOfOrder
        }
        if payload.count > maxSize - body.count {
            reset()
            throw .entityTooLarge
        }
        isStarted = true
        lastBlockStart = start
        body.append(contentsOf: payload)
        isComplete = !block.more
        return progress(for: block)
    }

    private func progress(for block: BlockOption) -> Progress {
        let answer = BlockOption(
            number: block.number, more: block.more,
            szx: BlockOption.negotiatedSZX(requested: block.szx, preferred: preferredSZX))
        return block.more ? .needMore(answer) : .complete(answer)
    }
}
