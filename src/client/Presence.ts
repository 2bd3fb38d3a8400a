import type { PresenceFrame, PresenceMember } from '../shared/presenceFrames.js'

/** What changed in the room's presence: members as they are now, and those who left as they were. */
export interface PresenceChange {
  joined: PresenceMember[]
  updated: PresenceMember[]
  left: PresenceMember[]
}

/**
 * The room's members as a session client knows them: the list the server
 * sends after each welcome, kept up to date by the diffs that follow. A
 * whole list is compared with what the client held, so a resume after which
 * nothing changed tells the app nothing.
 */
export class Presence {
  #members = new Map<string, PresenceMember>()

  /** The members, in the server's order for a list and in arrival order after it. */
  get list(): PresenceMember[] {
    return [...this.#members.values()]
  }

  /** Applies one presence frame; the change it made, or undefined when it made none. */
  apply(frame: PresenceFrame): PresenceChange | undefined {
    const change: PresenceChange = { joined: [], updated: [], left: [] }
    if (frame.kind === 'list') {
      const next = new Map(frame.members.map((member) => [member.key, member]))
      for (const [key, member] of this.#members) if (!next.has(key)) change.left.push(member)
      for (const member of next.values()) this.#compare(member, change)
      this.#members = next
    } else {
      for (const member of [...frame.join, ...frame.update]) {
        this.#compare(member, change)
        this.#members.set(member.key, member)
      }
      for (const key of frame.leave) {
        const member = this.#members.get(key)
        if (member === undefined) continue
        this.#members.delete(key)
        change.left.push(member)
      }
    }
    const { joined, updated, left } = change
    return joined.length + updated.length + left.length === 0 ? undefined : change
  }

  #compare(member: PresenceMember, change: PresenceChange): void {
    const held = this.#members.get(member.key)
    if (held === undefined) change.joined.push(member)
    else if (!same(held, member)) change.updated.push(member)
  }
}

function same(a: PresenceMember, b: PresenceMember): boolean {
  return a.connections === b.connections && JSON.stringify(a.meta) === JSON.stringify(b.meta)
}
