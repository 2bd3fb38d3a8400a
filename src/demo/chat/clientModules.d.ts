/** The modules of src/client as JavaScript source, by file name: "index.js", "Client.js", … */
declare const clientModules: Readonly<Record<string, string>>
export default clientModules
