import { connect, type Client } from 'durable-websocket/client'
import type { Say, ToClient } from '../src/protocol.js'

const form = document.querySelector<HTMLFormElement>('#join')!
const say = document.querySelector<HTMLFormElement>('#say')!
const log = document.querySelector<HTMLUListElement>('#log')!
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
  client = connect<ToClient, Say>(url.href, { heartbeat: 20_000 })
  client.on('message', (message) => {
    if (message.type === 'welcome') show(`you are #${String(message.id)}; here: ${message.names.join(', ')}`)
    else if (message.type === 'said') show(`${message.name}: ${message.text}`)
    else show(`${message.name} ${message.type}`)
  })
  client.on('close', ({ code, willReconnect }) =>
    show(`closed ${String(code)}${willReconnect ? ', reconnecting' : ''}`),
  )
})

say.addEventListener('submit', (event) => {
  event.preventDefault()
  const input = say.elements.namedItem('text') as HTMLInputElement
  if (client?.send({ text: input.value })) input.value = ''
})
