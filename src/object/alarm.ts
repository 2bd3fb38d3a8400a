/**
 * An object has one alarm, which a subclass may use too: move it earlier
 * when `time` needs that, never later, so neither use loses its turn.
 */
export async function alarmNoLaterThan(storage: DurableObjectStorage, time: number): Promise<void> {
  const current = await storage.getAlarm()
  if (current === null || current > time) await storage.setAlarm(time)
}
