// A subclass of RedisAdapter written for the official package: the official constructor
// signature, overrides with the official method types, and the official way to install it.
import { createClient } from "redis";
import { Server } from "socket.io";
import type { BroadcastOptions, Room } from "socket.io-adapter";
import { RedisAdapter, type RedisAdapterOptions } from "sioadapter";

class CountingAdapter extends RedisAdapter {
  broadcasts = 0;

  constructor(nsp: any, pubClient: any, subClient: any, opts?: Partial<RedisAdapterOptions>) {
    super(nsp, pubClient, subClient, opts);
  }

  override broadcast(packet: any, opts: BroadcastOptions): void {
    this.broadcasts++;
    super.broadcast(packet, opts);
  }

  override async allRooms(): Promise<Set<Room>> {
    const rooms = await super.allRooms();
    rooms.delete("internal");
    return rooms;
  }

  override async fetchSockets(opts: BroadcastOptions): Promise<any[]> {
    return super.fetchSockets(opts);
  }

  override serverSideEmit(packet: any[]): void {
    super.serverSideEmit(packet);
  }

  override async serverCount(): Promise<number> {
    return super.serverCount();
  }

  override close(): void {
    void super.close();
  }
}

const pubClient = createClient({ url: "redis://localhost:6379" });
const subClient = pubClient.duplicate();
await Promise.all([pubClient.connect(), subClient.connect()]);

const io = new Server();
io.adapter(function (nsp) {
  return new CountingAdapter(nsp, pubClient, subClient, { key: "socket.io", requestsTimeout: 3000 });
});
const adapter = io.of("/").adapter as CountingAdapter;
const count: number = adapter.broadcasts;
const uid: string = adapter.uid;
const timeout: number = adapter.requestsTimeout;
export { count, uid, timeout };

// A subclass that keeps the constructor, and one instance made by hand.
class Plain extends RedisAdapter {}
export const plain: RedisAdapter = new Plain(io.of("/other"), pubClient, subClient);
