import { connect, type Client } from 'durable-websocket/client'
import type { Say, ToClient } from '../src/protocol.js'

const form = document.querySelector<HTMLFormElement>('#join')!
const say = document.querySelector<HTMLFormElement>('#say')!
const log = document.querySelector<HTMLUListElement>('#log')!
const here = document.querySelector<HTMLParagraphElement>('#here')!
let client: Client<ToClient, Say> | undefined

function show(text: string): void {
  const item = document.createElement('li')
  item.textContent = text
  log.append(item)
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const data = new FormData(form)
  client?.close()
  log.replaceChildren()
  const url = new URL(`/chat/${String(data.get('room'))}`, location.href)
  url.searchParams.set('name', String(data.get('name')))
  // A ping every 20 s keeps the connection inside the server's idleTimeout of 60 s.
  const current = connect<ToClient, Say>(url.href, { heartbeat: 20_000 })
  client = current
  // The first list after joining is who was already here, not news.
  let listed = false
  current.on('open', ({ resumed }) => {
    if (!resumed) show(`you are #${String(current.id)}`)
  })
  current.on('presence', ({ joined, left }) => {
    if (listed) {
      for (const member of joined) show(`${member.key} joined`)
      for (const member of left) show(`${member.key} left`)
    }
    listed = true
    const names = current.presence.map(({ key, connections }) =>
      connections > 1 ? `${key} (${String(connections)} tabs)` : key,
    )
    here.textContent = `here: ${names.join(', ')}`
  })
  current.on('message', (message) => show(`${message.name}: ${message.text}`))
  current.on('close', ({ code, willReconnect }) =>
    show(`closed ${String(code)}${willReconnect ? ', reconnecting' : ''}`),
  )
})

say.addEventListener('submit', (event) => {
  event.preventDefault()
  const input = say.elements.namedItem('text') as HTMLInputElement
  if (client?.send({ text: input.value })) input.value = ''
})
