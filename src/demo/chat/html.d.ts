// wrangler bundles *.html files as text modules (one of its default module rules).
declare module '*.html' {
  const text: string
  export default text
}
