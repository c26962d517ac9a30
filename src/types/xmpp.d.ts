// Minimal typings for the parts of xmpp.js (0.13, CommonJS, untyped) that Balcony uses.

declare module "@xmpp/xml" {
  export class Element {
    constructor(name: string, attrs?: Record<string, string | undefined>);
    name: string;
    attrs: Record<string, string | undefined>;
    children: (Element | string)[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getChildElements(): Element[];
    text(): string;
    c(name: string, attrs?: Record<string, string | undefined>): Element;
    t(text: string): Element;
    up(): Element;
    append(...children: (Element | string)[]): Element;
    toString(): string;
  }
  type Child = Element | string | null | undefined | false | Child[];
  function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: Child[]): Element;
  namespace xml {
    export { Element };
    export function escapeXML(s: string): string;
    export function escapeXMLText(s: string): string;
  }
  export default xml;
}

declare module "@xmpp/component" {
  import type { Element } from "@xmpp/xml";
  import type { EventEmitter } from "node:events";
  interface IqContext {
    stanza: Element;
    element: Element;
    from: string;
    to: string;
    id: string;
  }
  type IqHandler = (ctx: IqContext) => Element | Promise<Element | boolean | undefined> | undefined | boolean;
  export interface Component extends EventEmitter {
    status: string;
    socket: import("node:net").Socket | null;
    reconnect: EventEmitter & { delay: number; stop(): void; start(): void; scheduleReconnect?(): void };
    iqCallee: { get(ns: string, name: string, handler: IqHandler): void; set(ns: string, name: string, handler: IqHandler): void };
    iqCaller: { request(el: Element, timeoutMs?: number): Promise<Element> };
    middleware: { use(fn: (ctx: { stanza: Element }, next: () => Promise<unknown>) => unknown): void };
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    write(s: string): Promise<void>;
  }
  export function component(opts: { service: string; domain: string; password: string }): Component;
  const pkg: { component: typeof component };
  export default pkg;
}
