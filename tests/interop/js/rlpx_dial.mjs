// An @ethereumjs/devp2p RLPx initiator for the interop tests: dials one enode on 127.0.0.1, does
// Hello and eth Status, reports JSON events like rlpx_peer.mjs, then exits.
//
//   node rlpx_dial.mjs --enode enode://PUBKEY@127.0.0.1:PORT [--hold-seconds 1] [--disconnect-reason 8]
//                      [--private-key HEX] [--client-id S] [--caps eth/68] [--chain mainnet] ... [--max-seconds 30]
//
// After the Status exchange it keeps the connection for --hold-seconds, then sends Disconnect with
// --disconnect-reason and exits; it exits as well when the remote side disconnects or the socket closes.
import { Peer, RLPx } from '@ethereumjs/devp2p'
import { hexToBytes } from '@ethereumjs/util'

import {
  DEFAULTS,
  LOOPBACK,
  chainSettings,
  emit,
  exitWhenToldOrAfter,
  fail,
  loadPrivateKey,
  observePeers,
  parseArgs,
  parseCaps,
  pubkeyHex,
  reportLibraryErrors,
  startEth,
} from './harness.mjs'

// ms: lets a Disconnect we received or sent be reported before the process goes.
const LINGER_MS = 300

const opts = parseArgs(process.argv.slice(2), {
  ...DEFAULTS,
  enode: '',
  'hold-seconds': '1',
  'disconnect-reason': '8',
})
// Only a literal loopback address: this harness must never reach, or resolve, anything else.
const match = /^enode:\/\/([0-9a-fA-F]{128})@127\.0\.0\.1:(\d{1,5})$/.exec(opts.enode)
if (match === null) fail(`--enode must be enode://<128 hex>@127.0.0.1:<port>, got ${opts.enode}`)
const remoteId = hexToBytes(`0x${match[1]}`)
const remotePort = Number(match[2])

const privateKey = loadPrivateKey(opts['private-key'])
const { common, status } = chainSettings(opts)
observePeers()

const rlpx = new RLPx(privateKey, {
  clientId: new TextEncoder().encode(opts['client-id']),
  capabilities: parseCaps(opts.caps),
  common,
  maxPeers: 1,
  dpt: null,
  listenPort: null,
})
reportLibraryErrors(rlpx)
const stop = exitWhenToldOrAfter(opts['max-seconds'], () => rlpx.destroy())

rlpx.events.on('peer:added', (peer) => {
  const eth = startEth(peer, status)
  if (eth === null) return
  eth.events.on('status', () => {
    setTimeout(() => peer.disconnect(Number(opts['disconnect-reason'])), Number(opts['hold-seconds']) * 1000)
  })
})
rlpx.events.on('peer:removed', () => setTimeout(() => stop('peer-removed'), LINGER_MS))

emit('dialing', { enode: opts.enode, pubkey: pubkeyHex(privateKey) })
rlpx
  .connect({ id: remoteId, address: LOOPBACK, tcpPort: remotePort })
  .then(() => {
    // A connection refused as useless or broken in the handshake never becomes a 'peer:added'
    // peer; its socket closing is then the end of the story.
    // Until 'peer:added' the library keeps the bare net.Socket in its peer table, afterwards the Peer.
    const entry = rlpx._peers.get(match[1].toLowerCase())
    const socket = entry instanceof Peer ? entry._socket : entry
    if (socket !== undefined) {
      socket.once('close', () => setTimeout(() => stop('socket-closed'), LINGER_MS))
    }
  })
  .catch((err) => {
    emit('error', { message: String(err?.message ?? err), where: 'connect' })
    stop('connect-failed')
  })
