// The sync firmware's payment (built in when Provisioned.swift carries a device key, `make -C Boards sync
// DEVICE_KEY=… PAY_TO=…`): after the sync, the device pays the provisioned recipient from its own account and
// proves the payment final, trusting nothing the gateway says that it cannot verify.
//
//   1. `v1/proof/account?a=<own address>`: balance and nonce, proven against the state root of a header that
//      HeaderVerifier accepted (ProofVerifier.verifyAccount).
//   2. A transfer signed by DeviceWallet with that nonce; fee cap 2 × the verified head's base fee + tip.
//   3. `POST v1/tx` (Block1 when over a block): 2.01 with the transaction id.
//   4. `v1/receipt?id=` polled (bounded) until final.
//   5. The head synced again; `v1/proof/tx?id=`: the block's header verified with HeaderVerifier against the
//      committee of its epoch, the Merkle path from the id to its transactions root (verifyTransaction) and the
//      receipt's path to its receipts root (verifyReceipt).
//
// When the proven balance is below the amount, the device first waits for a transfer to it (Receive.swift).
//
// Exit statuses (besides the sync's):
//   10       the gateway refused the transaction (its code and reason are printed)
//   11       the account proof was refused
//   12       the inclusion proof was refused
//   13       answers that each decode but contradict each other (a root, an id, a receipt for another transaction)
//   14       the device cannot pay: its key, address or balance, or the wallet refused the transfer
//   15       not final in time
//   64 + r   the header a proof refers to was refused (64: older than the trusted epoch, or no checkpoint to it)
//   80       final, but the receipt says the transfer failed
//   81       the receipt proof was refused
//   82       no transfer to the device arrived while it waited (Receive.swift)
#if FIRMWARE_SYNC
    import AmarsCodec
    import AmarsCrypto
    import Board
    import DeviceProtocol
    import Ledger
    import LightClient

    enum PayStatus {
        static let gatewayRefused: Int32 = 10
        static let accountProofRefused: Int32 = 11
        static let inclusionRefused: Int32 = 12
        static let inconsistent: Int32 = 13
        static let cannotPay: Int32 = 14
        static let notFinal: Int32 = 15
        static let receiptRefused: Int32 = 81
        static let noPaymentReceived: Int32 = 82
        static let proofHeaderRefused: Int32 = 64
        static let receiptFailed: Int32 = 80
        /// How long the receipt is polled for, and how often.
        static let finalityMillis: UInt32 = 30_000
        static let pollMillis: UInt32 = 250
    }

    extension Console {
        /// A gateway's diagnostic payload (ASCII), printable bytes only.
        static func text(_ bytes: [UInt8]) {
            for byte in bytes where byte >= 0x20 && byte < 0x7F { board_putc(byte) }
        }
    }

    func covers(_ trusted: TrustedState, _ height: UInt64) -> Bool {
        guard let range = trusted.signedHeights else { return false }
        return height >= range.first && height <= range.last
    }

    /// A header a proof refers to, verified: the trusted checkpoint itself, or a header of the trusted epoch
    /// through HeaderVerifier, following checkpoints first when it lies past the trusted epoch.
    @inline(never)
    func verifyProofHeader(
        _ link: inout Link, _ trusted: inout TrustedState, _ header: BlockHeader, _ certificate: CommitCertificate
    ) -> BlockHeader {
        while let range = trusted.signedHeights, header.height > range.last {
            guard let next = nextCheckpoint(&link, trusted) else {
                Console.line("pay: no checkpoint leads to the proof's block")
                fail(PayStatus.proofHeaderRefused, "proof header")
            }
            trusted = next
        }
        let hash = header.hash
        if hash == trusted.checkpointHash {
            Console.write("pay: block ")
            Console.decimal(header.height)
            Console.line(" is the trusted checkpoint")
            return header
        }
        guard header.height > trusted.height else {
            Console.line("pay: the proof's block is older than the trusted epoch")
            fail(PayStatus.proofHeaderRefused, "proof header")
        }
        do {
            let verified = try HeaderVerifier.verify(trusted: trusted, header: header, certificate: certificate)
            Console.write("pay: header of block ")
            Console.decimal(verified.height)
            Console.write(" verified (weight ")
            Console.decimal(verified.signedWeight)
            Console.write(" of ")
            Console.decimal(trusted.committee.totalWeight)
            Console.line(")")
            return verified.header
        } catch {
            refused(PayStatus.proofHeaderRefused, "proof header", error)
        }
    }

    /// Step 1: the device's own account, proven.
    @inline(never)
    func verifiedOwnAccount(_ link: inout Link, _ trusted: inout TrustedState, _ address: Address) -> AccountState {
        // The provisioned address text, so the image needs no bech32 encoder.
        fetch(
            &link,
            DeviceRequest(.accountProof, query: [[UInt8(ascii: "a"), UInt8(ascii: "=")] + provisionedDeviceBech32]))
        guard let payload = try? AccountProofPayload(decoding: link.bodyBytes()) else {
            fail(SyncStatus.undecodable, "account proof payload does not decode")
        }
        let (height, stateRoot, claimed, proof) = (payload.height, payload.stateRoot, payload.state, payload.proof)
        fetch(&link, .header(at: height))
        let (header, certificate) = decodeHeaderPayload(link.bodyBytes())
        guard header.height == height else { fail(PayStatus.inconsistent, "header of another height") }
        let verified = verifyProofHeader(&link, &trusted, header, certificate)
        guard verified.stateRoot == stateRoot else {
            fail(PayStatus.inconsistent, "account proof names another state root than its block")
        }
        do {
            // The state tree holds no empty accounts: an empty claimed state must be proven absent.
            let state = try ProofVerifier.verifyAccount(
                claimed.isEmpty ? nil : claimed, of: address, proof: proof, stateRoot: verified.stateRoot)
            Console.write("pay: account balance ")
            Console.decimal(state.balance)
            Console.write(", nonce ")
            Console.decimal(state.nonce)
            Console.write(" verified against the state root of block ")
            Console.decimal(height)
            Console.newline()
            return state
        } catch {
            Console.line("pay: account proof refused: proof mismatch")
            fail(PayStatus.accountProofRefused, "account proof")
        }
    }

    /// Step 3: submit; the transaction id the gateway answers with must be ours.
    @inline(never)
    func submit(_ link: inout Link, _ transaction: SignedTransaction) {
        let encoded = transaction.encoded
        let code: CoAPCode
        do { code = try link.post(DeviceResources.transaction, payload: encoded) } catch {
            transportFailure(error, DeviceResources.transaction)
        }
        guard code == .created else {
            Console.write("pay: gateway refused the transaction: ")
            Console.decimal(Int(code.codeClass))
            Console.write(".")
            Console.decimal(Int(code.detail) / 10)
            Console.decimal(Int(code.detail) % 10)
            Console.write(" ")
            Console.text(link.bodyBytes())
            Console.newline()
            fail(PayStatus.gatewayRefused, "transaction refused")
        }
        guard link.bodyBytes() == transaction.id.bytes else {
            fail(PayStatus.inconsistent, "gateway answered another transaction id")
        }
        Console.write("pay: submitted ")
        Console.decimal(encoded.count)
        Console.write(" bytes, 2.01 transaction ")
        Console.hex(transaction.id.bytes)
        Console.newline()
    }

    /// Step 4: the receipt once final (height, position, receipt), polled at most `finalityMillis`.
    @inline(never)
    func awaitReceipt(_ link: inout Link, _ id: Bytes32) -> (UInt64, UInt64, Receipt) {
        let deadline = board_millis() &+ PayStatus.finalityMillis
        var polls = 0
        while true {
            let code: CoAPCode
            do { code = try link.get(DeviceResources.receipt, query: DeviceRequest.receipt(id).query) } catch {
                transportFailure(error, DeviceResources.receipt)
            }
            polls += 1
            if code.isSuccess {
                do {
                    let answer = try ReceiptPayload(decoding: link.bodyBytes())
                    let (height, position, receipt) = (answer.height, answer.position, answer.receipt)
                    guard receipt.transactionID == id else { fail(PayStatus.inconsistent, "receipt of another id") }
                    Console.write("pay: receipt after ")
                    Console.decimal(polls)
                    Console.write(" polls: final at height ")
                    Console.decimal(height)
                    Console.write(", position ")
                    Console.decimal(position)
                    Console.write(receipt.status == .success ? ", success" : ", FAILED")
                    Console.write(", fee ")
                    Console.decimal(receipt.feePaid)
                    Console.newline()
                    return (height, position, receipt)
                } catch {
                    fail(SyncStatus.undecodable, "receipt payload does not decode")
                }
            }
            guard code.codeClass == 4 && code.detail == 4 else {
                transportFailure(.code(code.rawValue), DeviceResources.receipt)
            }
            guard Int32(bitPattern: deadline &- board_millis()) > 0 else {
                fail(PayStatus.notFinal, "not final in time")
            }
            link.wait(millis: PayStatus.pollMillis)
        }
    }

    /// Step 5 (and the proof of a received transfer): transaction `id` in block `height`, proven three ways
    /// against a header verified with the committee of its epoch (following checkpoints from `proofTrust`): the
    /// Merkle path from the id to its transactions root, and the receipt's path to its receipts root at the same
    /// position. Returns the position and the receipt, both now the chain's word rather than the gateway's.
    @inline(never)
    func provenReceipt(
        _ link: inout Link, _ proofTrust: inout TrustedState, _ id: Bytes32, height: UInt64, _ step: StaticString
    ) -> (position: UInt64, receipt: Receipt) {
        fetch(&link, .transactionProof(id))
        guard let payload = try? TransactionProofPayload(decoding: link.bodyBytes()) else {
            fail(SyncStatus.undecodable, "transaction proof payload does not decode")
        }
        let (header, certificate, position) = (payload.header, payload.certificate, payload.position)
        let (proof, receipt, receiptProof) = (payload.proof, payload.receipt, payload.receiptProof)
        guard header.height == height, receipt.transactionID == id, position == proof.index,
            receiptProof.index == proof.index
        else {
            fail(PayStatus.inconsistent, "the proof's block, receipt or position is not the transaction's")
        }
        let verified = verifyProofHeader(&link, &proofTrust, header, certificate)
        do {
            try ProofVerifier.verifyTransaction(id: id, proof: proof, transactionsRoot: verified.transactionsRoot)
        } catch {
            Console.write(step)
            Console.line(": inclusion proof refused: proof mismatch")
            fail(PayStatus.inclusionRefused, "inclusion proof")
        }
        do {
            try ProofVerifier.verifyReceipt(receipt, proof: receiptProof, receiptsRoot: verified.receiptsRoot)
        } catch {
            Console.write(step)
            Console.line(": receipt proof refused: proof mismatch")
            fail(PayStatus.receiptRefused, "receipt proof")
        }
        Console.write(step)
        Console.write(": inclusion of ")
        Console.hex(id.bytes)
        Console.write(" at position ")
        Console.decimal(position)
        Console.write(" verified against the transactions root of block ")
        Console.decimal(height)
        Console.write(", its receipt (")
        Console.write(receipt.status == .success ? "success" : "failed")
        Console.line(") against the receipts root")
        return (position, receipt)
    }

    /// Step 2: the transfer, signed (a function of its own: signing needs the deepest stack of the payment).
    @inline(never)
    func signTransfer(
        _ wallet: DeviceWallet, _ recipient: Address, chainID: UInt32, head: BlockHeader, _ requests: Int
    ) -> SignedTransaction {
        let maxFee = head.baseFee &* 2 &+ provisionedTipPerUnit
        let transaction: SignedTransaction
        do {
            let aux = Bytes32(w0: UInt64(board_millis()), w1: UInt64(requests), w2: 0, w3: 0)
            transaction = try wallet.transfer(
                chainID: chainID, to: recipient, amount: provisionedPayAmount, maxFeePerUnit: maxFee,
                tipPerUnit: provisionedTipPerUnit, auxRandom: aux)
        } catch {
            fail(PayStatus.cannotPay, "wallet refused the transfer")
        }
        Console.write("pay: signed transfer, nonce ")
        Console.decimal(transaction.body.nonce)
        Console.write(", fee cap ")
        Console.decimal(maxFee)
        Console.write(" per unit (2 x base fee ")
        Console.decimal(head.baseFee)
        Console.write(" of block ")
        Console.decimal(head.height)
        Console.write(" + tip ")
        Console.decimal(provisionedTipPerUnit)
        Console.line(")")
        return transaction
    }

    /// Stack used since the last call (each step of the payment is measured on its own).
    nonisolated(unsafe) var payStackPeak = 0
    func stepDone() {
        let peak = board_stack_peak()
        if peak > payStackPeak { payStackPeak = peak }
        Console.write("      (stack ")
        Console.decimal(peak)
        Console.line(" B)")
        board_stack_reset_peak()
    }

    /// The provisioned device address (checked against the key in payAndAwait), announced.
    @inline(never)
    func payingAddress() -> Address {
        guard let raw = Bytes20(provisionedDeviceAddress) else {
            fail(PayStatus.cannotPay, "provisioned device address does not decode")
        }
        board_stack_reset_peak()
        Console.write("pay: device ")
        Console.text(provisionedDeviceBech32)
        Console.write(" pays ")
        Console.decimal(provisionedPayAmount)
        Console.write(" units to ")
        Console.text(provisionedRecipientBech32)
        Console.newline()
        return Address(raw: raw)
    }

    /// What steps 1-4 leave for step 5.
    struct Payment {
        var id: Bytes32
        var nonce: UInt64
        var height: UInt64
        var receipt: Receipt
    }

    /// Steps 2-4. Steps 1 (verifiedOwnAccount) and 5 (finishPayment) run from syncMain, so the proofs' header
    /// checks and the re-sync use no more stack than the sync itself.
    @inline(never)
    func payAndAwait(_ link: inout Link, _ trusted: inout TrustedState, head: BlockHeader, account: AccountState)
        -> Payment
    {
        guard let secret = Bytes32(provisionedDeviceSecret), let key = try? PrivateKey(bytes: secret),
            let recipientRaw = Bytes20(provisionedRecipient)
        else { fail(PayStatus.cannotPay, "provisioned device key or recipient does not decode") }
        var wallet = DeviceWallet(key: key, nextNonce: 0)
        guard wallet.address.raw.bytes == provisionedDeviceAddress else {
            fail(PayStatus.cannotPay, "device key does not give the provisioned address")
        }
        let recipient = Address(raw: recipientRaw)
        guard account.balance >= provisionedPayAmount else { fail(PayStatus.cannotPay, "balance too low") }
        wallet.resync(verifiedAccount: account)

        let transaction = signTransfer(wallet, recipient, chainID: trusted.chainID, head: head, link.requests)
        stepDone()
        submit(&link, transaction)
        stepDone()
        do { try wallet.markAccepted(transaction) } catch { fail(PayStatus.cannotPay, "nonce") }
        let id = transaction.id
        let (height, _, receipt) = awaitReceipt(&link, id)
        stepDone()
        return Payment(id: id, nonce: transaction.body.nonce, height: height, receipt: receipt)
    }

    /// Step 5, after syncMain synced the head again: the inclusion proven with `proofTrust`, the trusted state
    /// from before that re-sync (verifyProofHeader follows checkpoints from it to the block's epoch).
    @inline(never)
    func finishPayment(_ link: inout Link, _ proofTrust: inout TrustedState, _ payment: Payment) -> Never {
        let height = payment.height
        let (_, receipt) = provenReceipt(&link, &proofTrust, payment.id, height: height, "pay")
        stepDone()
        guard receipt == payment.receipt else {
            fail(PayStatus.inconsistent, "the polled receipt is not the proven one")
        }
        guard receipt.status == .success else { fail(PayStatus.receiptFailed, "the receipt says failed") }
        Console.write("pay: paid ")
        Console.decimal(provisionedPayAmount)
        Console.write(" units to ")
        Console.text(provisionedRecipientBech32)
        Console.write(", nonce ")
        Console.decimal(payment.nonce)
        Console.write(", final at height ")
        Console.decimal(height)
        Console.line(", inclusion verified")
        Console.write("pay: ")
        Console.decimal(link.requests)
        Console.write(" requests in all, ")
        Console.decimal(link.retransmissions)
        Console.line(" retransmissions")
        Console.memory(stackPeak: payStackPeak, " (the deepest step)")
        Console.line("pay: PASS")
        board_exit(0)
    }
#endif
