/** Small shared pieces: avatars, colours, the clock tick, online state. */
import { useEffect, useState } from 'preact/hooks';

const COLORS = ['#4f46e5', '#db2777', '#0891b2', '#ca8a04', '#16a34a', '#9333ea', '#ea580c', '#0d9488'];

/** A stable colour for a user id. */
export function colorOf(id: string): string {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length]!;
}

const initials = (name: string) => name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0]!.toUpperCase()).join('');

export function Avatar({ id, name, size = 'md', title }: { id: string; name: string; size?: 'sm' | 'md' | 'lg'; title?: string }) {
  return (
    <span class={`avatar avatar-${size}`} style={{ background: colorOf(id) }} title={title ?? name} aria-hidden="true">
      {initials(name)}
    </span>
  );
}

/** Re-renders every `ms`. */
export function useTick(ms: number): number {
  const [n, setN] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setN((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
  return n;
}

/** navigator.onLine, kept current. */
export function useOnline(): boolean {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(navigator.onLine);
    addEventListener('online', on);
    addEventListener('offline', on);
    return () => {
      removeEventListener('online', on);
      removeEventListener('offline', on);
    };
  }, []);
  return online;
}
