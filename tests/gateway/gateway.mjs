#!/usr/bin/env node
// Wechaty puppet-service gateway over the mock puppet, for sopbot integration tests.
// Serves gRPC (TLS disabled) on 127.0.0.1:PORT and a JSON control API on 127.0.0.1:CONTROL.
// Prints exactly one stdout line `READY grpc=127.0.0.1:P control=127.0.0.1:C`; logs go to stderr.
// See README.md in this directory for the control API.
import fs from 'node:fs'
import http from 'node:http'
import { parseArgs } from 'node:util'

import * as PUPPET from 'wechaty-puppet'
import { PuppetServer } from 'wechaty-puppet-service'
import { mock, PuppetMock } from 'wechaty-puppet-mock'

const t0 = process.hrtime.bigint()
const elapsedMs = () => Number(process.hrtime.bigint() - t0) / 1e6

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'control-port': { type: 'string' },
    token: { type: 'string' },
    'log-level': { type: 'string' },
    tls: { type: 'boolean' },
    journal: { type: 'string' },
    'send-delay': { type: 'string' },
  },
})
const port = Number(args.port ?? process.env.GATEWAY_PORT)
const controlPort = Number(args['control-port'] ?? process.env.GATEWAY_CONTROL_PORT)
const token = args.token ?? process.env.GATEWAY_TOKEN ?? process.env.WECHATY_PUPPET_SERVER_TOKEN
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(controlPort) || controlPort <= 0 || !token) {
  process.stderr.write('usage: gateway.mjs --port P --control-port C --token T  (or env GATEWAY_PORT, GATEWAY_CONTROL_PORT, GATEWAY_TOKEN)\n')
  process.exit(2)
}
// wechaty's own logger writes to stderr; keep it quiet unless asked.
PUPPET.log.level(args['log-level'] ?? process.env.WECHATY_LOG ?? 'warn')
const info = (...parts) => process.stderr.write(`[gateway +${elapsedMs().toFixed(0)}ms] ${parts.join(' ')}\n`)

// ---------------------------------------------------------------- population
const SELF = { id: 'wxid_sopbot', name: '运营小助手' }
const CONTACTS = [
  { id: 'wxid_zhangwei', name: '张伟', gender: 1, city: '上海', province: '上海' },
  { id: 'wxid_wangfang', name: '王芳', gender: 2, city: '杭州', province: '浙江' },
  { id: 'wxid_lina', name: '李娜', gender: 2, city: '北京', province: '北京' },
  { id: 'wxid_liuyang', name: '刘洋', gender: 1, city: '深圳', province: '广东' },
  { id: 'wxid_chenjing', name: '陈静', gender: 2, city: '成都', province: '四川' },
  { id: 'wxid_zhaolei', name: '赵磊', gender: 1, city: '南京', province: '江苏' },
]
const ROOMS = [
  { id: 'r_vip@chatroom', topic: 'VIP客户群', ownerId: SELF.id, memberIdList: [SELF.id, 'wxid_zhangwei', 'wxid_wangfang', 'wxid_lina'] },
  { id: 'r_newbie@chatroom', topic: '新手交流群', ownerId: 'wxid_liuyang', memberIdList: [SELF.id, 'wxid_liuyang', 'wxid_chenjing', 'wxid_zhaolei'] },
]

const contactPayload = (p) => ({
  id: p.id,
  name: p.name,
  alias: p.alias ?? '',
  avatar: p.avatar ?? '',
  city: p.city ?? '',
  province: p.province ?? '',
  address: '',
  signature: '',
  friend: p.friend ?? true,
  gender: p.gender ?? PUPPET.types.ContactGender.Unknown,
  phone: [],
  star: false,
  type: PUPPET.types.Contact.Individual,
  weixin: p.weixin ?? p.id,
})

const mocker = new mock.Mocker()
mocker.ContactMock.create(contactPayload({ ...SELF, friend: false }))
for (const c of CONTACTS) mocker.ContactMock.create(contactPayload(c))
for (const r of ROOMS) mocker.RoomMock.create({ adminIdList: [], avatar: '', ...r, memberIdList: [...r.memberIdList] })

let wantLoggedIn = true
// Runs on every puppet start. The python client sends stop/start on each connect and a
// plain mock login would be logged out by that stop, so (re)login here, inside the mocker.
mocker.use(function sopbotEnvironment (m) {
  if (wantLoggedIn && !puppet.isLoggedIn) {
    info('environment: login', SELF.id)
    m.login(m.ContactMock.load(SELF.id))
  }
  return () => {}
})

const puppet = new PuppetMock({ mocker })

// ---------------------------------------------------------------- recording
// --journal FILE: every recorded send is also appended to FILE as a JSON line, written before
// the send returns, so the record survives a SIGKILL of this process (fault tests count it).
// --send-delay MS: each send takes that long, as a real WeChat round trip does.
const journal = args.journal
const sendDelay = Number(args['send-delay'] ?? 0)
let seq = 0
let sent = []
const record = (kind, fields) => {
  const entry = { seq: ++seq, ts: Date.now(), kind, ...fields }
  sent.push(entry)
  if (journal) fs.appendFileSync(journal, JSON.stringify(entry) + '\n')
  info('recorded', JSON.stringify(entry))
  return entry
}
const isRoomId = (id) => typeof id === 'string' && id.includes('@')
const target = (conversationId) => ({ to: conversationId, isRoom: isRoomId(conversationId) })
const contactExists = (id) => mocker.cacheContactPayload.has(id)
const roomExists = (id) => mocker.cacheRoomPayload.has(id)
const requireConversation = (id) => {
  if (!(isRoomId(id) ? roomExists(id) : contactExists(id))) throw new Error(`unknown conversation ${id}`)
}
const dirty = (type, id) => {
  // drop our own payload cache now; dirtyPayload also tells connected clients
  const cache = { [PUPPET.types.Payload.Contact]: puppet.cache?.contact, [PUPPET.types.Payload.Room]: puppet.cache?.room }[type]
  cache?.delete?.(id)
  if (type === PUPPET.types.Payload.Room) puppet.cache?.roomMember?.delete?.(id)
  puppet.dirtyPayload(type, id)
}

// Emit a message the way the mock does, so the bot sees the echo of its own sends.
let msgCounter = 0
const emitMessage = ({ talkerId, conversationId, text, mentionIdList = [], type = PUPPET.types.Message.Text, filename }) => {
  const id = `msg_${++msgCounter}_${Date.now()}`
  const base = { id, talkerId, text, timestamp: Date.now(), type, ...(filename ? { filename } : {}) }
  const payload = isRoomId(conversationId)
    ? { ...base, roomId: conversationId, mentionIdList }
    : { ...base, listenerId: conversationId }
  mocker.MessageMock.create(payload)
  puppet.emit('message', { messageId: id })
  return id
}

const sendGuard = async (conversationId) => {
  if (sendDelay) await new Promise((resolve) => setTimeout(resolve, sendDelay))
  if (!puppet.isLoggedIn) throw new Error('not logged in')
  requireConversation(conversationId)
}
// text: the echo's message id is returned, like a real puppet
puppet.messageSendText = async (conversationId, text, mentionIdList) => {
  await sendGuard(conversationId)
  const mentionIds = mentionIdList ?? []
  record('text', { ...target(conversationId), text, mentionIds })
  return emitMessage({ talkerId: puppet.currentUserId, conversationId, text, mentionIdList: mentionIds })
}
puppet.messageSendUrl = async (conversationId, urlLinkPayload) => {
  await sendGuard(conversationId)
  record('url', { ...target(conversationId), payload: urlLinkPayload })
  return emitMessage({ talkerId: puppet.currentUserId, conversationId, text: urlLinkPayload?.url ?? '', type: PUPPET.types.Message.Url })
}
puppet.messageSendFile = async (conversationId, fileBox) => {
  await sendGuard(conversationId)
  record('file', { ...target(conversationId), name: fileBox?.name, mediaType: fileBox?.mediaType, fileBox: fileBox?.toJSON?.() ?? String(fileBox) })
  return emitMessage({ talkerId: puppet.currentUserId, conversationId, text: fileBox?.name ?? '', type: PUPPET.types.Message.Attachment })
}
puppet.messageSendContact = async (conversationId, contactId) => {
  await sendGuard(conversationId)
  record('contact', { ...target(conversationId), contactId })
  return emitMessage({ talkerId: puppet.currentUserId, conversationId, text: contactId, type: PUPPET.types.Message.Contact })
}
puppet.messageSendMiniProgram = async (conversationId, miniProgramPayload) => {
  await sendGuard(conversationId)
  record('miniProgram', { ...target(conversationId), payload: miniProgramPayload })
  return emitMessage({ talkerId: puppet.currentUserId, conversationId, text: miniProgramPayload?.title ?? '', type: PUPPET.types.Message.MiniProgram })
}
puppet.messageSendLocation = async (conversationId, locationPayload) => {
  await sendGuard(conversationId)
  record('location', { ...target(conversationId), payload: locationPayload })
  return emitMessage({ talkerId: puppet.currentUserId, conversationId, text: locationPayload?.name ?? '', type: PUPPET.types.Message.Location })
}
puppet.messageForward = async (conversationId, messageId) => {
  await sendGuard(conversationId)
  record('forward', { ...target(conversationId), messageId })
}
puppet.messageRecall = async (messageId) => {
  record('recall', { messageId })
  return true
}

// contacts: alias get/set really works here
puppet.contactAlias = async (contactId, alias) => {
  const p = mocker.cacheContactPayload.get(contactId)
  if (!p) throw new Error(`unknown contact ${contactId}`)
  if (typeof alias === 'undefined') return p.alias ?? ''
  record('alias', { contactId, alias: alias ?? '' })
  p.alias = alias ?? ''
  dirty(PUPPET.types.Payload.Contact, contactId)
}

// tags: recorded, and kept per contact (note: the TS server drops per-contact tag lists)
const tags = new Map() // contactId -> Set(tagId)
puppet.tagContactAdd = async (tagId, contactId) => {
  record('tagAdd', { tagId, contactId })
  if (!tags.has(contactId)) tags.set(contactId, new Set())
  tags.get(contactId).add(tagId)
}
puppet.tagContactRemove = async (tagId, contactId) => {
  record('tagRemove', { tagId, contactId })
  tags.get(contactId)?.delete(tagId)
}
puppet.tagContactDelete = async (tagId) => {
  record('tagDelete', { tagId })
  for (const s of tags.values()) s.delete(tagId)
}
puppet.tagContactList = async (contactId) => {
  if (contactId) return [...(tags.get(contactId) ?? [])]
  return [...new Set([...tags.values()].flatMap(s => [...s]))]
}

// rooms
puppet.roomTopic = async (roomId, topic) => {
  const p = mocker.cacheRoomPayload.get(roomId)
  if (!p) throw new Error(`unknown room ${roomId}`)
  if (typeof topic === 'undefined') return p.topic
  record('roomTopic', { roomId, topic })
  p.topic = topic
  dirty(PUPPET.types.Payload.Room, roomId)
}
const announces = new Map()
puppet.roomAnnounce = async (roomId, text) => {
  if (typeof text === 'undefined') return announces.get(roomId) ?? ''
  record('roomAnnounce', { roomId, text })
  announces.set(roomId, text)
}
puppet.roomAdd = async (roomId, contactId, inviteOnly) => {
  record('roomAdd', { roomId, contactId, inviteOnly: !!inviteOnly })
}
puppet.roomDel = async (roomId, contactId) => {
  record('roomDel', { roomId, contactId })
}
puppet.roomQuit = async (roomId) => {
  record('roomQuit', { roomId })
}
puppet.roomCreate = async (contactIdList, topic) => {
  record('roomCreate', { contactIdList, topic })
  return 'mock_room_id@chatroom'
}

// friendships
const friendships = new Map() // friendshipId -> payload
let friendshipCounter = 0
puppet.friendshipRawPayload = async (id) => {
  const p = friendships.get(id)
  if (!p) throw new Error(`unknown friendship ${id}`)
  return p
}
puppet.friendshipAccept = async (friendshipId) => {
  const f = friendships.get(friendshipId)
  if (!f) throw new Error(`unknown friendship ${friendshipId}`)
  record('friendshipAccept', { friendshipId, contactId: f.contactId })
  const c = mocker.cacheContactPayload.get(f.contactId)
  if (c) {
    c.friend = true
    dirty(PUPPET.types.Payload.Contact, f.contactId)
  }
}
puppet.friendshipAdd = async (contactId, options) => {
  record('friendshipAdd', { contactId, hello: typeof options === 'string' ? options : options?.hello ?? '' })
}

// ---------------------------------------------------------------- control API
const listContacts = () => [...mocker.cacheContactPayload.values()].map(p => ({
  id: p.id, name: p.name, alias: p.alias ?? '', friend: !!p.friend, self: p.id === SELF.id, tags: [...(tags.get(p.id) ?? [])],
}))
const listRooms = () => [...mocker.cacheRoomPayload.values()].map(p => ({
  id: p.id, topic: p.topic, ownerId: p.ownerId ?? '', memberIdList: [...p.memberIdList], announce: announces.get(p.id) ?? '',
}))
const contactMock = (id, field = 'contact') => {
  if (!id || !contactExists(id)) throw httpError(404, `${field}: unknown contact ${id}`)
  return mocker.ContactMock.load(id)
}
const roomMock = (id) => {
  if (!id || !roomExists(id)) throw httpError(404, `room: unknown room ${id}`)
  return mocker.RoomMock.load(id)
}
const httpError = (status, message) => Object.assign(new Error(message), { status })
const requireLogin = () => { if (!puppet.isLoggedIn) throw httpError(409, 'bot user is not logged in') }
let contactCounter = 0
const createContact = ({ id, name, alias, friend = true, gender, city, province, weixin, avatar }) => {
  if (!name && !id) throw httpError(400, 'contact needs id or name')
  const cid = id ?? `wxid_new${++contactCounter}`
  if (isRoomId(cid)) throw httpError(400, 'contact id must not contain "@"')
  if (contactExists(cid)) throw httpError(409, `contact ${cid} exists`)
  mocker.ContactMock.create(contactPayload({ id: cid, name: name ?? cid, alias, friend, gender, city, province, weixin, avatar }))
  return listContacts().find(c => c.id === cid)
}

const routes = {
  'GET /health': () => ({ ok: true, loggedIn: puppet.isLoggedIn, selfId: SELF.id, seq, grpc: `127.0.0.1:${port}` }),
  'GET /sent': (_b, q) => {
    const since = Number(q.get('since') ?? 0)
    return sent.filter(e => e.seq > since && (!q.get('kind') || e.kind === q.get('kind')) && (!q.get('to') || e.to === q.get('to')))
  },
  'POST /reset-sent': () => { const n = sent.length; sent = []; return { cleared: n, seq } },
  'GET /contacts': () => listContacts(),
  'GET /rooms': () => listRooms(),
  'POST /contact': (b) => createContact(b),
  'POST /room': (b) => {
    const id = b.id ?? `r_new${Date.now()}@chatroom`
    if (!isRoomId(id)) throw httpError(400, 'room id must contain "@"')
    if (roomExists(id)) throw httpError(409, `room ${id} exists`)
    const members = b.memberIdList ?? [SELF.id]
    members.forEach(m => contactMock(m, 'memberIdList'))
    mocker.RoomMock.create({ id, topic: b.topic ?? id, ownerId: b.ownerId ?? SELF.id, adminIdList: [], avatar: '', memberIdList: [...members] })
    return listRooms().find(r => r.id === id)
  },
  'POST /say': (b) => {
    requireLogin()
    contactMock(b.from, 'from')
    if (typeof b.text !== 'string') throw httpError(400, 'text is required')
    if (b.room) {
      const r = roomMock(b.room)
      if (!r.payload.memberIdList.includes(b.from)) throw httpError(409, `${b.from} is not in ${b.room}`)
    }
    const mentionIdList = b.mentions ?? []
    const typeName = b.type ?? 'Text'
    const type = PUPPET.types.Message[typeName]
    if (typeof type !== 'number') throw httpError(400, `unknown message type ${typeName}`)
    const messageId = emitMessage({ talkerId: b.from, conversationId: b.room ?? SELF.id, text: b.text, mentionIdList, type, filename: b.filename })
    return { messageId }
  },
  // a puppet that wants a QR scan to log in (status: Waiting=2, Scanned=3, Confirmed=4, Timeout=5)
  'POST /scan': (b) => {
    if (typeof b.qrcode !== 'string' || !b.qrcode) throw httpError(400, 'qrcode is required')
    puppet.emit('scan', { qrcode: b.qrcode, status: b.status ?? PUPPET.types.ScanStatus.Waiting, data: b.data ?? '' })
    return { ok: true }
  },
  // a puppet that hands out new ids after a re-login: the contact moves to newId, keeping
  // its other fields (weixin, alias, name, avatar) and its room memberships
  'POST /contact-reid': (b) => {
    const old = mocker.cacheContactPayload.get(b.id)
    if (!old) throw httpError(404, `unknown contact ${b.id}`)
    if (!b.newId || isRoomId(b.newId) || contactExists(b.newId)) throw httpError(400, 'newId must be a new contact id')
    mocker.ContactMock.create({ ...old, id: b.newId })
    mocker.cacheContactPayload.delete(b.id)
    puppet.cache?.contact?.delete?.(b.id)
    for (const r of mocker.cacheRoomPayload.values()) {
      const i = r.memberIdList.indexOf(b.id)
      if (i >= 0) {
        r.memberIdList[i] = b.newId
        dirty(PUPPET.types.Payload.Room, r.id)
      }
      if (r.ownerId === b.id) r.ownerId = b.newId
    }
    if (tags.has(b.id)) { tags.set(b.newId, tags.get(b.id)); tags.delete(b.id) }
    return listContacts().find(c => c.id === b.newId)
  },
  'POST /friendship': (b) => {
    requireLogin()
    let contactId = b.from
    if (!contactId || !contactExists(contactId)) {
      contactId = createContact({ id: b.from, name: b.name ?? b.from ?? '新朋友', friend: false }).id
    }
    const id = `fr_${++friendshipCounter}_${Date.now()}`
    friendships.set(id, {
      id, contactId, hello: b.hello ?? '', type: PUPPET.types.Friendship.Receive,
      scene: PUPPET.types.FriendshipScene.Unknown, stranger: contactId, ticket: `ticket_${id}`, timestamp: Date.now(),
    })
    puppet.emit('friendship', { friendshipId: id })
    return { friendshipId: id, contactId }
  },
  'POST /room-join': (b) => {
    requireLogin()
    const r = roomMock(b.room)
    const invitees = (b.invitees ?? []).map(id => {
      if (!contactExists(id)) createContact({ id, name: id, friend: false })
      return mocker.ContactMock.load(id)
    })
    if (invitees.length === 0) throw httpError(400, 'invitees is required')
    r.add(...invitees).by(contactMock(b.inviter ?? SELF.id, 'inviter'))
    dirty(PUPPET.types.Payload.Room, b.room)
    return listRooms().find(x => x.id === b.room)
  },
  'POST /room-leave': (b) => {
    requireLogin()
    const r = roomMock(b.room)
    const removees = (b.removees ?? []).map(id => contactMock(id, 'removees'))
    if (removees.length === 0) throw httpError(400, 'removees is required')
    r.remove(...removees).by(contactMock(b.remover ?? SELF.id, 'remover'))
    dirty(PUPPET.types.Payload.Room, b.room)
    return listRooms().find(x => x.id === b.room)
  },
  'POST /room-topic': (b) => {
    requireLogin()
    const r = roomMock(b.room)
    if (typeof b.topic !== 'string') throw httpError(400, 'topic is required')
    r.topic(b.topic).by(contactMock(b.changer ?? SELF.id, 'changer'))
    dirty(PUPPET.types.Payload.Room, b.room)
    return listRooms().find(x => x.id === b.room)
  },
  'POST /logout': async () => {
    wantLoggedIn = false
    await puppet.logout('control API /logout')
    return { loggedIn: puppet.isLoggedIn }
  },
  'POST /login': () => {
    wantLoggedIn = true
    if (!puppet.isLoggedIn) mocker.login(mocker.ContactMock.load(SELF.id))
    return { loggedIn: puppet.isLoggedIn }
  },
}

const readBody = (req) => new Promise((resolve, reject) => {
  const chunks = []
  req.on('data', c => chunks.push(c))
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8')
    if (!raw.trim()) return resolve({})
    try { resolve(JSON.parse(raw)) } catch { reject(httpError(400, 'body is not JSON')) }
  })
  req.on('error', reject)
})

const control = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1')
  const handler = routes[`${req.method} ${url.pathname}`]
  let status = 200
  let body
  try {
    if (!handler) throw httpError(404, `no route ${req.method} ${url.pathname}`)
    body = await handler(await readBody(req), url.searchParams)
  } catch (e) {
    status = e.status ?? 500
    body = { error: e.message }
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(body))
})

// ---------------------------------------------------------------- lifecycle
// --tls: serve with wechaty's built-in "insecure" certificate (for TLS mismatch tests)
const server = new PuppetServer({ endpoint: `127.0.0.1:${port}`, puppet, token, tls: { disable: !args.tls } })

let stopping = false
const shutdown = async (signal) => {
  if (stopping) return
  stopping = true
  info('shutdown on', signal)
  const hard = setTimeout(() => process.exit(0), 3000)
  hard.unref()
  try {
    control.close()
    await server.stop()
    if (puppet.state.active()) await puppet.stop()
  } catch (e) {
    info('shutdown error', e?.message ?? e)
  }
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('unhandledRejection', (e) => info('unhandledRejection', e?.stack ?? e))

try {
  await puppet.start()
  await server.start()
  await new Promise((resolve, reject) => {
    control.once('error', reject)
    control.listen(controlPort, '127.0.0.1', resolve)
  })
} catch (e) {
  info('startup failed:', e?.stack ?? e)
  process.exit(1)
}
info(`ready in ${elapsedMs().toFixed(0)} ms`)
process.stdout.write(`READY grpc=127.0.0.1:${port} control=127.0.0.1:${controlPort}\n`)
