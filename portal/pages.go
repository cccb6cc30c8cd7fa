package portal

// pageRoutes are the HTML pages; the UI's pages*.go replaces this file.
var pageRoutes []route
